"""Debian's headless Chromium driven by Playwright, for the browser tests and `bench ui`.

Also what both need to read the page: when it is ready, sending a message and timing what
appears, and axe-core (from the repository's node_modules) split into the app's own
violations and Streamlit's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from assistant.testing.streamlit_server import REPO

__all__ = [
    "AXE",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "NEUTRAL_SITE",
    "READY_MARKER",
    "ask_in_browser",
    "launch_chromium",
    "run_axe",
    "timed_ask",
]

# Debian's Chromium; CHROMIUM_PATH overrides it (a knob of this harness, not of the product).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Quiet, private, reproducible: no sync, no component updates, no background requests.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
# Installed by scripts/ensure-browser (npm ci), never fetched at test time.
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
# The starter prompts appear once the Assistant is loaded: the page is ready to answer.
READY_MARKER = ".st-key-starters button"
NEUTRAL_SITE = "https://www.weather.com/"
# What marks an answer as complete: its hidden "done" mark, or the note of a failed turn.
_DONE = "[data-rc-done], .rc-note"


def launch_chromium(playwright: Any) -> Any:
    """Launch Debian's Chromium headless, quiet and sandbox-free (for containers)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
    )


def ask_in_browser(page: Any, text: str, timeout_ms: float = 120_000) -> float:
    """Type a message, send it, wait until its answer is complete; return seconds."""
    messages = page.get_by_test_id("stChatMessage")
    before = messages.count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    start = time.perf_counter()
    box.press("Enter")
    messages.nth(before + 1).locator(_DONE).first.wait_for(state="attached", timeout=timeout_ms)
    return time.perf_counter() - start


# Records, in the page, when each stage first shows after Enter (ms from the keydown). The
# thinking indicator is whichever the person sees first: the page's own (#rc-pending, drawn
# at Enter) once it is attached, visible and painted, or the server's in the answer.
_WATCH = """(before) => {
  const t = {};
  const now = () => performance.now();
  const msgs = () => document.querySelectorAll('[data-testid="stChatMessage"]');
  const visible = (el) => Boolean(el && el.isConnected && (el.checkVisibility
    ? el.checkVisibility({visibilityProperty: true, opacityProperty: true})
    : el.getClientRects().length > 0));
  let painting = false;
  const thinkingShown = () => {
    // Counted at the first frame drawn after it is in the page, not when it is inserted.
    if (painting || t.thinking !== undefined) return;
    painting = true;
    requestAnimationFrame(() => setTimeout(() => {
      if (t.thinking === undefined) t.thinking = now() - t.enter;
    }, 0));
  };
  const check = () => {
    const m = msgs();
    if (t.enter === undefined) return;
    if (visible(document.getElementById('rc-pending'))) thinkingShown();
    if (t.bubble === undefined && m.length > before) t.bubble = now() - t.enter;
    const answer = m[before + 1];
    if (!answer) return;
    if (answer.querySelector('.rc-thinking')) thinkingShown();
    const body = [...answer.querySelectorAll('[data-testid="stMarkdownContainer"]')]
      .some(el => el.innerText.trim().length > 0);
    if (t.first_text === undefined && (body || answer.querySelector('.rc-banner')))
      t.first_text = now() - t.enter;
    if (t.full === undefined && answer.querySelector('[data-rc-done], .rc-note'))
      t.full = now() - t.enter;
  };
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && t.enter === undefined) {
      t.enter = now();
      check();  // the page's indicator is drawn in this same keydown, before this listener
    }
  }, true);
  const obs = new MutationObserver(check);
  obs.observe(document.body, {childList: true, subtree: true, characterData: true});
  window.__rcTimes = t;
}"""


def timed_ask(page: Any, text: str, timeout_ms: float = 120_000) -> dict[str, float]:
    """Send a message; return ms from Enter to bubble, thinking, first text and full answer."""
    messages = page.get_by_test_id("stChatMessage")
    before = messages.count()
    page.evaluate(_WATCH, before)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")
    messages.nth(before + 1).locator(_DONE).first.wait_for(state="attached", timeout=timeout_ms)
    page.wait_for_function("() => window.__rcTimes.full !== undefined", timeout=timeout_ms)
    times = page.evaluate("() => window.__rcTimes")
    return {k: float(v) for k, v in times.items() if k != "enter"}


def run_axe(page: Any) -> dict[str, list[dict[str, Any]]]:
    """Run axe-core (WCAG 2.x A/AA) in the page; split violations into the app's and Streamlit's.

    A violation is the app's own when a node it names is in the app's markup (the rc-*
    ids and classes: Quick exit, banners, help lines, notes) or is text the app wrote
    (Markdown, captions, headings, the person's words); the rest is Streamlit's widgets.
    """
    if not AXE.exists():
        raise FileNotFoundError(f"axe-core is not installed at {AXE}: run scripts/ensure-browser")
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
          const OWN = '[id^="rc-"], .rc-banner, .rc-help, .rc-note, .rc-thinking, ' +
            '[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"], ' +
            '[data-testid="stHeading"], [data-testid="stText"]';
          const r = await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                             'wcag22aa', 'best-practice']},
          });
          const own = (sel) => {
            const el = document.querySelector(sel);
            return Boolean(el && el.closest(OWN));
          };
          return r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                                      own: n.target.some(t => own(t))})),
          }));
        }"""
    )
    split: dict[str, list[dict[str, Any]]] = {"app": [], "streamlit": []}
    for v in result:
        mine = [n for n in v["nodes"] if n["own"]]
        theirs = [n for n in v["nodes"] if not n["own"]]
        if mine:
            split["app"].append({**v, "nodes": mine})
        if theirs:
            split["streamlit"].append({**v, "nodes": theirs})
    return split
