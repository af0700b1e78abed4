"""End to end in a real headless Chromium against `streamlit run ui/app.py` on loopback.

Screenshots go to artifacts/ (git-ignored). Without Chromium or Playwright the tests skip on a
developer's machine and fail in CI (CI=true), so a broken CI image cannot pass silently.
"""

from __future__ import annotations

import os
import re

import pytest

from evals.bench_ui import CHROMIUM, ask_in_browser, launch_chromium
from tests.ui_helpers import ARTIFACTS, streamlit_server  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

NEUTRAL_SITE = "https://www.weather.com/"
# Starter prompts are drawn once the Assistant is loaded. (Streamlit keeps a hidden copy of
# a button that has a tooltip, so locators filter on visibility.)
READY = ".st-key-starters button"
PHONE = {"width": 390, "height": 844}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _require_browser() -> None:
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is not installed")
    if problems:
        message = "; ".join(problems)
        if _in_ci():
            pytest.fail(f"browser test cannot run in CI: {message}", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, streamlit_server):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.outside = []  # every request that would leave the machine
    page.on(
        "request",
        lambda r: None if r.url.startswith(streamlit_server.url) else page.outside.append(r.url),
    )
    # Nothing leaves the machine: the neutral site is answered locally.
    page.route(
        NEUTRAL_SITE + "**",
        lambda route: route.fulfill(body="<h1>Weather</h1>", content_type="text/html"),
    )
    page.goto(streamlit_server.url)
    try:
        page.locator(READY).filter(visible=True).first.wait_for(timeout=300_000)
    except Exception:
        shot(page, "0-not-ready")
        pytest.fail(f"the page never got ready; server log:\n{streamlit_server.log()}")
    try:
        yield page
    finally:
        context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)


def test_answer_with_source_then_crisis_banner_then_phone_width(page):
    expect = _expect()
    shot(page, "1-welcome")
    messages = page.get_by_test_id("stChatMessage")

    ask_in_browser(page, "we barely talk anymore, it feels like we're roommates")
    answer = messages.nth(1)
    expect(answer).to_contain_text("“")  # the article is quoted
    source = answer.get_by_test_id("stExpander").first
    expect(source).to_contain_text("Source:")
    source.locator("summary").click()
    expect(source.get_by_test_id("stExpanderDetails")).to_be_visible()
    expect(source.locator("blockquote")).not_to_be_empty()
    expect(source.locator("blockquote")).to_be_visible()
    shot(page, "2-answer-with-source")

    ask_in_browser(page, "I don't want to be alive anymore")
    crisis = messages.nth(3)
    expect(crisis.locator('a[href="tel:988"]').first).to_be_visible()
    expect(crisis.get_by_test_id("stExpander")).to_have_count(0)
    sticky = page.locator(".st-key-sticky_help")
    expect(sticky.locator('a[href="tel:988"]')).to_be_visible()
    shot(page, "3-crisis-banner")

    page.set_viewport_size(PHONE)
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_visible()
    expect(box).to_be_in_viewport()
    expect(page.get_by_role("button", name="Quick exit")).to_be_in_viewport()
    expect(sticky.locator('a[href="tel:988"]')).to_be_in_viewport()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "nothing is wider than a phone screen"
    ask_in_browser(page, "how can we spend more time together?")
    expect(messages).to_have_count(6)
    expect(sticky.locator('a[href="tel:988"]')).to_be_in_viewport()  # stays while scrolling
    page.screenshot(path=str(ARTIFACTS / "browser-4-phone-390px.png"))
    assert page.outside == [], "no request leaves the machine: no telemetry, fonts or icons"


def test_quick_exit_clears_and_leaves_no_way_back(page, streamlit_server):  # noqa: F811
    expect = _expect()
    ask_in_browser(page, "my partner and I fight about chores")
    page.get_by_role("button", name="Quick exit").click()
    # Polls the URL: a rerun may restart the redirect, aborting the first navigation.
    expect(page).to_have_url(re.compile("^" + re.escape(NEUTRAL_SITE)), timeout=30_000)
    assert page.url.startswith(NEUTRAL_SITE)
    assert [u for u in page.outside if not u.startswith(NEUTRAL_SITE)] == []
    page.go_back()
    assert not page.url.startswith(streamlit_server.url), "Back must not return to the chat"
    page.goto(streamlit_server.url)
    page.locator(READY).filter(visible=True).first.wait_for()
    expect(page.get_by_test_id("stChatMessage")).to_have_count(0)
    expect(page.get_by_text("fight about chores")).to_have_count(0)


def test_starter_fills_the_input_and_controls_are_labelled(page):
    expect = _expect()
    starter = page.locator(READY).filter(visible=True).nth(1)
    label = starter.inner_text().split("\n")[-1].strip()  # the text after the icon's name
    assert len(label) > 20
    starter.click()
    expect(page.get_by_test_id("stChatInputTextArea")).to_have_value(label)
    expect(page.get_by_test_id("stChatMessage")).to_have_count(0)

    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, a[href], input, textarea, select')]
            .filter(e => e.offsetParent !== null)
            .filter(e => !(e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
                           || e.getAttribute('placeholder') || e.title
                           || (e.labels && e.labels.length) || e.textContent.trim()))
            .map(e => e.outerHTML.slice(0, 120))"""
    )
    assert unnamed == []


def _expect():
    from playwright.sync_api import expect

    return expect
