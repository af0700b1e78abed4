"""Reconnect's chat page: a thin Streamlit layer over the Assistant.

Run with `streamlit run ui/app.py`. The conversation lives in `st.session_state` only (one
per browser tab, gone when the tab closes); nothing the person types is written to disk or
to the logs. The Assistant (embedding model, index) is built once per server process, in a
background thread, so the page takes messages while it gets ready.

Nothing sent is lost: the chat input queues each message (`on_submit`) and the page answers
the queue in order. Streamlit merges two sends that arrive while a run can't be stopped (the
older is dropped), so the page never blocks: the Assistant loads, and each answer is
written, on another thread while the run checks every few hundredths of a second whether a
newer run is waiting, which then takes over and queues the new message at once.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import os
import re
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import streamlit as st
from help_lines import (
    banner_contacts,
    channels,
    help_contacts,
    relocalize_text,
)

from assistant.assistant import TRIAGE_MAX_CHARS, Assistant, Final, Reply, TextDelta
from assistant.config import Settings
from assistant.errors import QueryError, ReconnectError
from assistant.feedback import FeedbackRecord, FeedbackStore
from assistant.resources import Resource, known_locales, normalize_locale, resources_for

log = logging.getLogger("reconnect.ui")
HERE = Path(__file__).resolve().parent

# Where "Quick exit" sends the browser: a neutral, everyday site (the convention on
# domestic-violence sites). `location.replace` keeps this page out of the Back button.
NEUTRAL_SITE = "https://www.weather.com/"
# The longest message the Assistant reads (its triage reads this much of every message).
MAX_MESSAGE_CHARS = TRIAGE_MAX_CHARS
TOO_LONG = (
    "This message is {n} characters long. I read the first {max}; "
    "please send the rest as another message."
)

STARTERS = (
    "We barely talk anymore; it feels like we're roommates.",
    "How can I tell my partner I feel far apart without blaming them?",
    "What small things could bring us closer again?",
    "How do we know when it's time to see a couples therapist?",
)

AVATARS = {"user": ":material/person:", "assistant": ":material/favorite:"}
BANNER_TITLE = {
    "crisis": "You deserve support from a person right now.",
    "abuse": "You are not to blame, and help is available.",
}
STICKY_LEAD = {"crisis": "Talk to someone now", "abuse": "Domestic abuse support"}
PLACEHOLDER = "What's going on between you two?"
PLACEHOLDER_LOADING = "Getting ready… you can already type your message"
# The state shown while an answer is on its way (by the page script at once, then the server).
THINKING = "Thinking…"

TURN_FAILED = (
    "Sorry, something went wrong on our side while answering. Please try again in a moment, "
    "or start a new conversation."
)
NOT_READY = (
    "Sorry, the assistant couldn't start right now, so it can't answer messages. "
    "If you need to talk to someone, the contacts below are there for you."
)


# --- the Assistant, once per server, built in the background --------------------------------


class Loader:
    """Builds the Assistant in a background thread, so the page can take messages meanwhile."""

    def __init__(self, settings: Settings) -> None:
        self.assistant: Assistant | None = None
        self.failed = False
        self._done = threading.Event()
        threading.Thread(target=self._build, args=(settings,), daemon=True).start()

    def _build(self, settings: Settings) -> None:
        try:
            self.assistant = Assistant.from_settings(settings)
        except Exception as exc:  # noqa: BLE001 - shown as a sentence, logged without words
            _log_failure("starting the assistant", exc)
            self.failed = True
        finally:
            self._done.set()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for the build to end; return whether it has."""
        return self._done.wait(seconds)


def _fingerprint(settings: Settings) -> str:
    """Key the shared Assistant by everything but per-session choices; secrets only hashed."""
    data = settings.model_dump(mode="json", exclude={"locale", "feedback_db"})
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    data["openai_api_key"] = hashlib.sha256(key.encode()).hexdigest()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@st.cache_resource(show_spinner=False, max_entries=4)
def _loader(fingerprint: str, _settings: Settings) -> Loader:
    return Loader(_settings)


def _log_failure(what: str, exc: BaseException) -> None:
    # Type and code locations only: an exception's message (and a source line) may quote
    # what the person typed.
    frames = "\n".join(
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)
    )
    log.error("%s failed: %s\n%s", what, type(exc).__name__, frames)


def yield_to_a_newer_run() -> None:
    """Let Streamlit stop this run for a newer one (a message just sent), drawing nothing.

    Reading session state is such a point, as every `st.*` call is: a message sent now is
    queued at once instead of merged with a later one. Waiting runs check here often and
    redraw only what changed, so many sessions waiting at once don't slow the server.
    """
    _ = st.session_state["messages"]


def wait_until_ready(loader: Loader, slot: Any, locale: str) -> None:
    """Wait for the Assistant with a visible note, yielding to Streamlit as it waits."""
    started, shown = time.monotonic(), -1
    while not loader.wait(0.1):
        yield_to_a_newer_run()
        seconds = int(time.monotonic() - started)
        if seconds != shown:
            # The crisis line is in the note: help must not wait for the Assistant.
            slot.html(
                status_html(
                    f"Getting ready… ({seconds} s) Your messages will be answered in order."
                )
                + help_now_html(locale)
            )
            shown = seconds
    slot.empty()


# --- session state -------------------------------------------------------------------------


def _state() -> Any:
    ss = st.session_state
    ss.setdefault("messages", [])  # {"id", "role", "content", "locale"?, "reply"?, "error"?}
    ss.setdefault("pending", [])  # {"id", "text"}: sent, not answered yet, oldest first
    ss.setdefault("banners", [])  # safety routes whose help banner stays for the session
    return ss


def queue_message() -> None:
    """Queue what was just sent, so a message sent while another is answered is kept."""
    ss = _state()
    text = ss.get("prompt")
    if isinstance(text, str) and text.strip():
        ss.pending.append({"id": uuid.uuid4().hex, "text": text})


def clear_conversation() -> None:
    """Forget the conversation, its queue, its banners and its feedback widgets."""
    ss = st.session_state
    ss["messages"] = []
    ss["pending"] = []
    ss["in_flight"] = {}
    ss["banners"] = []
    for key in [k for k in ss if isinstance(k, str) and k.startswith("fb-")]:
        del ss[key]


def forget() -> None:
    """Quick exit's message to the server (best effort; the page has already left)."""
    clear_conversation()
    st.session_state["prompt"] = None


def fill_prompt(text: str) -> None:
    """Put a starter prompt into the chat input, for the person to edit or send."""
    st.session_state["prompt"] = text


def _history(messages: Iterable[dict]) -> list[dict]:
    """What the Assistant needs of the conversation: roles, words and routes, oldest first."""
    return [
        {"role": m["role"], "content": m["content"], "route": m.get("route")}
        for m in messages
        if not m.get("error")
    ]


# --- the app's own markup (escaped; links are tel:, sms: and https: only) ------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _links(res: Resource, *, short: bool = False) -> str:
    parts = []
    for ch in channels(res):
        web = ch.href.startswith("http")
        external = ' target="_blank" rel="noopener noreferrer"' if web else ""
        # Short labels ("Chat") fit the help row on a phone; the name is said just before.
        label = ch.label.split(" at ")[0] if short else ch.label
        parts.append(f'<a href="{_e(ch.href)}"{external}>{_e(label)}</a>')
    return f'<span class="rc-links">{"".join(parts) or _e(res.contact)}</span>'


def resource_item(res: Resource) -> str:
    """One contact: its name, then a link for each way to reach it."""
    hours = f" ({_e(res.hours)})" if res.hours else ""
    return f"<li><strong>{_e(res.name)}</strong>{hours}: {_links(res)}</li>"


def banner_html(route: str, contacts: Iterable[Resource]) -> str:
    """The banner at the top of a crisis or abuse reply (not a live alert: announced once)."""
    items = "".join(resource_item(r) for r in contacts)
    return (
        f'<section class="rc-banner rc-banner-{route}" aria-label="Help lines">'
        f"<p><strong>{_e(BANNER_TITLE[route])}</strong></p><ul>{items}</ul></section>"
    )


def sticky_html(route: str, locale: str) -> str:
    """A compact help line kept at the top of the page once a safety reply was shown."""
    links = "".join(_links(r) for r in help_contacts(locale, route))
    return (
        f'<div class="rc-banner rc-banner-{route} rc-sticky">'
        f"<strong>{_e(STICKY_LEAD[route])}:</strong> {links}</div>"
    )


def help_now_html(locale: str) -> str:
    """The crisis line, one tap from the main view on every screen."""
    first = help_contacts(locale, "crisis")[:1]
    line = _links(first[0], short=True) if first else ""
    return f'<div class="rc-help rc-help-now"><strong>Need help now?</strong> {line}</div>'


def help_lines_html(locale: str) -> str:
    """Every line for the chosen country, grouped by what it is for."""
    res = resources_for(locale)
    groups = (
        ("If you're thinking about suicide or are in crisis", [*res.crisis, *res.crisis_text]),
        ("If your partner hurts, threatens or controls you", res.abuse),
        ("If you are in danger now", res.emergency),
    )
    body = "".join(
        f"<p><strong>{_e(title)}</strong></p><ul>{''.join(resource_item(r) for r in items)}</ul>"
        for title, items in groups
        if items
    )
    return f'<div class="rc-help">{body}</div>'


def note_html(sentence: str, locale: str) -> str:
    """A friendly sentence in place of an answer, with the crisis line still in reach."""
    items = "".join(resource_item(r) for r in help_contacts(locale, "crisis"))
    return (
        f'<div class="rc-note"><p>{_e(sentence)}</p>'
        f"<p>If you need to talk to someone now:</p><ul>{items}</ul></div>"
    )


def status_html(text: str) -> str:
    """A visible state while the page works ("Getting ready…", "Thinking…")."""
    dots = '<span class="rc-dots" aria-hidden="true"></span>'
    return f'<div class="rc-thinking">{dots}{_e(text)}</div>'


def done_marker(msg_id: str, *, new: bool) -> str:
    """A hidden mark the page script announces once, through its polite live region."""
    quiet = "" if new else ' data-rc-quiet="1"'
    return f'<span data-rc-done="{_e(msg_id)}"{quiet} hidden></span>'


def safe_markdown(text: str) -> str:
    """A reply as Markdown that can't load anything: image syntax is shown as text."""
    return text.replace("![", "!\\[")


# --- rendering -----------------------------------------------------------------------------


def _resources(reply: dict) -> list[Resource]:
    out = []
    for r in reply.get("resources", []):
        try:
            out.append(Resource(**r))
        except TypeError:
            continue  # a shape this page doesn't know: the banner falls back to the route
    return out


def user_bubble(content: str) -> None:
    """The person's words as plain text: no Markdown, no HTML, nothing fetched."""
    with st.chat_message("user", avatar=AVATARS["user"]):
        st.text(content)
        if len(content) > MAX_MESSAGE_CHARS:
            st.html(
                f'<div class="rc-note">'
                f"<p>{_e(TOO_LONG.format(n=f'{len(content):,}', max=f'{MAX_MESSAGE_CHARS:,}'))}"
                "</p></div>"
            )


def sources(citations: list[dict]) -> None:
    """Each citation as an expander: the section title, then the quoted passage."""
    for c in citations:
        with st.expander(f"Source: {c['section_title']}", icon=":material/menu_book:"):
            quote = "\n".join(f"> {line}" for line in c["quote"].splitlines() or [""])
            st.markdown(safe_markdown(quote))
            st.caption(f"From the article's section “{c['section_title']}” (`{c['section_id']}`).")


def reply_footer(msg: dict, settings: Settings) -> None:
    """Notices, sources and the feedback thumbs under an answer."""
    reply = msg["reply"]
    if reply.get("notice"):
        st.caption(f":material/info: {reply['notice']}")
    if reply.get("verification"):
        st.caption(f":material/fact_check: {reply['verification']}")
    sources(reply.get("citations", []))
    st.feedback(
        "thumbs",
        key=f"fb-{msg['id']}",
        on_change=save_feedback,
        args=(msg["id"], str(settings.feedback_path)),
    )


def reply_body(msg: dict, locale: str) -> None:
    """An answer's banner and text, re-told in the country chosen now."""
    reply, old = msg["reply"], msg.get("locale", locale)
    route = reply["route"]
    if route in BANNER_TITLE:
        st.html(banner_html(route, banner_contacts(route, _resources(reply), old, locale)))
    text = relocalize_text(reply["text"], route, old, locale)
    st.markdown(safe_markdown(reply["text"] if text is None else text))
    if text is None:
        st.caption(
            f"This earlier answer named the lines for {resources_for(old).label}; the lines "
            f"for {resources_for(locale).label} are at the top of the page."
        )


def show_message(msg: dict, settings: Settings, locale: str) -> None:
    """Redraw one message of the conversation."""
    if msg["role"] == "user":
        user_bubble(msg["content"])
        return
    with st.chat_message("assistant", avatar=AVATARS["assistant"]):
        if msg.get("error"):
            st.html(note_html(msg["error"], locale))
            return
        reply_body(msg, locale)
        reply_footer(msg, settings)
        st.html(done_marker(msg["id"], new=False))


def _paragraphs(text: str) -> Iterator[str]:
    """Split text after each blank line, keeping every character."""
    yield from (p for p in re.split(r"(?<=\n\n)", text) if p)


class InFlight:
    """One queued message being answered off the script's thread.

    A newer run (a message sent meanwhile, a country change) stops the script, not this
    work: the next run picks the same answer up where it is, so nothing is computed twice.
    """

    def __init__(self, assistant: Assistant, text: str, history: list[dict], locale: str):
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.done = threading.Event()
        args = (assistant, text, history, locale)
        threading.Thread(target=self._run, args=args, daemon=True).start()

    def _run(self, assistant: Assistant, text: str, history: list[dict], locale: str) -> None:
        try:
            for event in assistant.stream(text, history, locale=locale):
                self.events.append(event)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the script's thread
            self.error = exc
        finally:
            self.done.set()


def _in_flight(assistant: Assistant, item: dict, locale: str) -> InFlight:
    turns = st.session_state.setdefault("in_flight", {})
    if item["id"] not in turns:
        history = _history(st.session_state.messages)
        turns[item["id"]] = InFlight(assistant, item["text"], history, locale)
    return turns[item["id"]]


def stream_into(body: Any, thinking: Any, turn: InFlight) -> Reply:
    """Show the text as it comes, a paragraph at a time; return the final Reply."""
    shown, seen, redrawn = "", 0, time.monotonic()
    while True:
        finished = turn.done.wait(0.05)
        events = turn.events[seen:]
        seen += len(events)
        for event in events:
            if isinstance(event, TextDelta) and event.text:
                for paragraph in _paragraphs(event.text):
                    shown += paragraph
                    body.markdown(safe_markdown(shown))
                thinking.empty()
            elif isinstance(event, Final):
                return event.reply
        if finished:
            break
        yield_to_a_newer_run()
        if not shown and time.monotonic() - redrawn > 1.0:
            # Also a yield point by drawing, should reading state ever stop being one.
            thinking.html(status_html(THINKING))
            redrawn = time.monotonic()
    if turn.error is not None:
        raise turn.error
    raise RuntimeError("the assistant's stream ended without a reply")


def _failed(sentence: str, locale: str) -> dict:
    st.html(note_html(sentence, locale))
    return {"id": uuid.uuid4().hex, "role": "assistant", "content": "", "error": sentence}


def run_turn(assistant: Assistant, item: dict, settings: Settings, locale: str) -> dict:
    """Answer one queued message, drawing it as it comes; return the reply's message."""
    with st.chat_message("assistant", avatar=AVATARS["assistant"]):
        banner, thinking, body = st.empty(), st.empty(), st.empty()
        thinking.html(status_html(THINKING))
        try:
            reply = stream_into(body, thinking, _in_flight(assistant, item, locale))
        except QueryError as exc:
            body.empty()
            thinking.empty()
            return _failed(str(exc), locale)
        except Exception as exc:  # noqa: BLE001 - a sentence, never a traceback
            _log_failure("a turn", exc)
            body.empty()
            thinking.empty()
            return _failed(TURN_FAILED, locale)
        data = reply.to_dict()
        msg = {
            "id": uuid.uuid4().hex,
            "role": "assistant",
            "content": data["text"],
            "route": data["route"],
            "reply": data,
            "locale": locale,
        }
        if data["route"] in BANNER_TITLE:
            banner.html(banner_html(data["route"], reply.resources))
        # The Reply's text is the final word: verification may have revised the stream.
        body.markdown(safe_markdown(data["text"]))
        reply_footer(msg, settings)
        st.html(done_marker(msg["id"], new=True))
    return msg


def answer_queue(assistant: Assistant, settings: Settings, slots: dict[str, Any]) -> None:
    """Answer every queued message in order, each under its own bubble."""
    ss = _state()
    while ss.pending:
        item = ss.pending[0]
        with slots[item["id"]]:
            msg = run_turn(assistant, item, settings, ss.locale)
        # No Streamlit call between these lines: a newer run can't stop this one halfway.
        ss.messages.extend([{"id": item["id"], "role": "user", "content": item["text"]}, msg])
        ss.pending.pop(0)
        ss.get("in_flight", {}).pop(item["id"], None)
        for route in (msg.get("route"), msg.get("reply", {}).get("sticky_route")):
            if route in BANNER_TITLE and route not in ss.banners:
                ss.banners.append(route)


def fail_queue(locale: str, slots: dict[str, Any]) -> None:
    """The Assistant could not start: every queued message gets the note, none is dropped."""
    ss = _state()
    while ss.pending:
        item = ss.pending[0]
        with slots[item["id"]], st.chat_message("assistant", avatar=AVATARS["assistant"]):
            msg = _failed(NOT_READY, locale)
        ss.messages.extend([{"id": item["id"], "role": "user", "content": item["text"]}, msg])
        ss.pending.pop(0)


def save_feedback(msg_id: str, path: str) -> None:
    """Store or withdraw a thumbs rating: route, mode and cited sections, never the words."""
    ss = st.session_state
    value = ss.get(f"fb-{msg_id}")
    msg = next((m for m in ss.get("messages", []) if m.get("id") == msg_id), None)
    if msg is None or "reply" not in msg:
        return
    store = FeedbackStore(path)
    reply = msg["reply"]
    try:
        if value is None:
            store.withdraw(msg_id)
            st.toast("Your rating was withdrawn. Nothing about this answer is kept.")
            return
        sections = tuple(dict.fromkeys(c["section_id"] for c in reply["citations"]))
        store.record(
            FeedbackRecord(
                id=msg_id,
                rating="up" if value == 1 else "down",
                route=reply["route"],
                mode=reply["mode"],
                sections=sections,
                locale=ss.get("locale"),
            )
        )
        st.toast("Thank you. Only the rating and the article sections are kept, not your words.")
    except (ReconnectError, ValueError) as exc:
        _log_failure("saving feedback", exc)
        st.toast("Sorry, your feedback couldn't be saved.")


# --- the parts of the page -----------------------------------------------------------------


def _locale_label(code: str) -> str:
    label = resources_for(code).label
    return label[:1].upper() + label[1:]


@functools.cache
def _assets() -> tuple[str, str]:
    """The page's stylesheet and script, read once per process."""
    config = {
        "neutral": NEUTRAL_SITE,
        "maxChars": MAX_MESSAGE_CHARS,
        "tooLong": TOO_LONG,
        "thinking": THINKING,
        "exitHelp": "Leave now for a weather site (Esc). This conversation is cleared.",
    }
    script = (HERE / "page.js").read_text(encoding="utf-8")
    script = script.replace("__CONFIG__", json.dumps(config).replace("</", "<\\/"))
    return (HERE / "page.css").read_text(encoding="utf-8"), script


def page_assets() -> None:
    """The page's own styles and script (Quick exit, announcements, notes, thinking at Enter)."""
    css, script = _assets()
    st.html(f"<style>{css}</style>")
    with st.container(key="forget"):
        st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
        st.button("Forget this conversation", key="forget_button", on_click=forget)


_SETTINGS_ENV = ("RECONNECT_", "OPENAI_", "CHROMA_", "AZURE_OPENAI")


@functools.lru_cache(maxsize=8)
def _settings(env: tuple[tuple[str, str], ...], cwd: str) -> Settings:
    return Settings()


def load_settings() -> Settings:
    """The settings for this run; read again only when the environment or folder changed."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_SETTINGS_ENV)))
    return _settings(env, os.getcwd())


def sidebar(settings: Settings) -> None:
    """ "Need help now?": every line for the chosen country, the reset, and what is kept."""
    ss = st.session_state
    with st.sidebar:
        st.header("Need help now?", anchor=False)
        st.caption(f"Lines for {_locale_label(ss.locale)} (change the country at the top).")
        st.html(help_lines_html(ss.locale))
        st.divider()
        st.button(
            "New conversation",
            key="new_conversation",
            icon=":material/refresh:",
            on_click=clear_conversation,
            help="Clears this conversation and its banners.",
            width="stretch",
        )
        st.caption(
            "**Quick exit** (top of the page, or the Esc key) clears this page and opens a "
            "weather site. Your browser history may still show this visit; a private window "
            "leaves no history."
        )
        if settings.llm_enabled:
            st.caption(
                f":material/cloud: LLM mode ({settings.llm_model}): answers are written by "
                "a language model and checked against the article."
            )
        else:
            st.caption(
                ":material/cloud_off: Offline mode: answers are composed from the article's "
                "own words."
            )
        st.caption(
            "Conversations stay in this browser tab and are not stored. Thumbs up or down "
            "keep only the rating and the article sections."
        )


def help_row(locales: list[str]) -> None:
    """The crisis line and the country choice, one tap each from the main view."""
    with st.container(key="help_row", horizontal=True, vertical_alignment="center", gap="small"):
        st.html(help_now_html(st.session_state.locale), width="content")
        st.selectbox(
            "Country or region for help lines",
            options=locales,
            key="locale",
            format_func=lambda code: f"Country: {_locale_label(code)}",
            label_visibility="collapsed",
            width=220,
        )


def welcome() -> None:
    """The empty state: what this is and is not."""
    st.markdown(
        "Feeling far from your partner? Tell me what's going on. I answer from one article, "
        "*Feeling Disconnected From Your Partner? Six Ways to Reconnect*, and show the "
        "passage each suggestion comes from, so you can check it. I'm an automated "
        "assistant, not a therapist or a crisis service."
    )


def starters() -> None:
    """Starter prompts from the article's themes; drawn only once the Assistant is ready."""
    box = st.container(key="starters")
    box.caption("Or start with one of these (it goes into the message box for you to edit):")
    for i, text in enumerate(STARTERS):
        box.button(
            text,
            key=f"starter-{i}",
            icon=":material/edit_note:",
            on_click=fill_prompt,
            args=(text,),
            help="Puts this question in the message box.",
        )


@st.cache_resource(show_spinner=False)
def favicon() -> Any:
    """Draw the tab icon here: a named icon would be fetched from a font CDN on every visit."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((4, 4, 60, 60), fill="#3f6f78")
    return img


def settings_failed(ss: Any) -> None:
    """The page when the settings can't be read: a sentence and the crisis lines."""
    st.title("Reconnect", anchor=False)
    st.html(note_html(NOT_READY, ss.get("locale", "US")))


def conversation(settings: Settings, loader: Loader, locale: str) -> None:
    """The messages so far, the queue, and the answers to it."""
    ss = _state()
    for msg in ss.messages:
        show_message(msg, settings, locale)
    slots: dict[str, Any] = {}
    for item in ss.pending:
        slots[item["id"]] = st.container()
        with slots[item["id"]]:
            user_bubble(item["text"])
    status = st.empty()
    if not loader.wait(0):
        wait_until_ready(loader, status, locale)
        if not ss.pending:
            st.rerun()  # redraw the input's placeholder and the starters, now ready
    if loader.assistant is None:
        status.html(note_html(NOT_READY, locale))
        fail_queue(locale, slots)
        _loader.clear()  # try again on the next visit
        return
    answer_queue(loader.assistant, settings, slots)
    if not ss.messages:
        starters()


def main() -> None:
    st.set_page_config(
        page_title="Reconnect",
        page_icon=favicon(),
        layout="centered",
        menu_items={
            "Get help": None,
            "Report a bug": None,
            "About": "Reconnect: answers from one article on reconnecting with a partner.",
        },
    )
    ss = _state()
    page_assets()
    try:
        settings = load_settings()
    except Exception as exc:  # noqa: BLE001 - e.g. an invalid RECONNECT_* variable
        _log_failure("reading the settings", exc)
        settings_failed(ss)
        return
    ss.setdefault("locale", normalize_locale(settings.locale))
    loader = _loader(_fingerprint(settings), settings)
    ready = loader.wait(0)
    # Drawn first, so a message can be sent (and is queued) from the first paint.
    st.chat_input(
        PLACEHOLDER if ready else PLACEHOLDER_LOADING,
        key="prompt",
        on_submit=queue_message,
        submit_mode="submit",
    )
    sidebar(settings)
    st.title("Reconnect", anchor=False)
    # Help stays in view while the conversation scrolls (CSS makes this block sticky): the
    # crisis line and the country first, then the banner of a safety reply once one is shown.
    top = st.container(key="sticky_help")
    with top:
        help_row(known_locales())
    if not ss.messages and not ss.pending:
        welcome()
    conversation(settings, loader, ss.locale)
    with top:
        for route in ss.banners:
            st.html(sticky_html(route, ss.locale))


main()
