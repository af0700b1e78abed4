"""Reconnect's chat page: a thin Streamlit layer over the Assistant.

Run with `streamlit run ui/app.py`. The conversation lives in `st.session_state` only (one
per browser tab, gone when the tab closes); nothing the person types is written to disk or
to the logs. The Assistant (embedding model, index) is built once per server process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import traceback
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import streamlit as st

from assistant.assistant import Final, TextDelta
from assistant.config import Settings
from assistant.errors import QueryError, ReconnectError
from assistant.feedback import FeedbackRecord, FeedbackStore
from assistant.resources import known_locales, normalize_locale, resources_for

log = logging.getLogger("reconnect.ui")

# Where "Quick exit" sends the browser: a neutral, everyday site (the convention on
# domestic-violence sites). `location.replace` keeps this page out of the Back button.
NEUTRAL_SITE = "https://www.weather.com/"

# Starter prompts, one per theme of the article (drift, honesty, time together, therapy).
STARTERS = (
    "We barely talk anymore; it feels like we're roommates.",
    "How can I tell my partner I feel far apart without blaming them?",
    "What small things could bring us closer again?",
    "How do we know when it's time to see a couples therapist?",
)

SAFETY_ROUTES = ("crisis", "abuse")
AVATARS = {"user": ":material/person:", "assistant": ":material/favorite:"}

TURN_FAILED = (
    "Sorry, something went wrong on our side while answering. Please try again in a moment, "
    "or start a new conversation."
)
NOT_READY = (
    "Sorry, the assistant couldn't start right now, so it can't answer messages. "
    "If you need to talk to someone, the contacts below are there for you."
)

CSS = """
<style>
/* Quick exit stays in reach while scrolling, in the header bar, on every screen size. */
.st-key-quick_exit { position: fixed; top: 0.6rem; right: 3.5rem; z-index: 999991;
  width: auto !important; }
/* The help banner for crisis and abuse stays in view for the rest of the session. */
/* (Streamlit wraps a keyed container in a layout wrapper of the same height: the wrapper
   is the element that can stick.) */
[data-testid="stLayoutWrapper"]:has(> .st-key-sticky_help [data-testid="stAlert"]) {
  position: sticky; top: 3.75rem; z-index: 999; background: #fbfaf7; padding-bottom: 0.25rem; }
.st-key-sticky_help [data-testid="stAlert"] { box-shadow: 0 2px 6px rgba(0, 0, 0, 0.12); }
</style>
"""


# --- the Assistant, once per server --------------------------------------------------------


def _fingerprint(settings: Settings) -> str:
    """Key the shared Assistant by everything but per-session choices; secrets only hashed."""
    data = settings.model_dump(mode="json", exclude={"locale", "feedback_db"})
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    data["openai_api_key"] = hashlib.sha256(key.encode()).hexdigest()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@st.cache_resource(
    show_spinner="Getting ready: loading the article and its search index (only the first "
    "visit takes a moment)…",
    max_entries=4,
)
def _shared_assistant(fingerprint: str, _settings: Settings) -> Any:
    from assistant.assistant import Assistant

    return Assistant.from_settings(_settings)


def _log_failure(what: str, exc: BaseException) -> None:
    # Type and code locations only: an exception's message (and a source line) may quote
    # what the person typed.
    frames = "\n".join(
        f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)
    )
    log.error("%s failed: %s\n%s", what, type(exc).__name__, frames)


def load_assistant(settings: Settings) -> Any | None:
    """Return the shared Assistant, or None (with a friendly note) if it can't start."""
    try:
        return _shared_assistant(_fingerprint(settings), settings)
    except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
        _log_failure("starting the assistant", exc)
        return None


# --- session state -------------------------------------------------------------------------


def _state() -> Any:
    ss = st.session_state
    ss.setdefault("messages", [])  # {"id", "role", "content", "route"?, "reply"?, "error"?}
    ss.setdefault("banners", [])  # safety routes whose help banner stays for the session
    return ss


def clear_conversation() -> None:
    """Forget the conversation, its banners and its feedback widgets."""
    ss = st.session_state
    ss["messages"] = []
    ss["banners"] = []
    for key in [k for k in ss if isinstance(k, str) and k.startswith("fb-")]:
        del ss[key]


def quick_exit() -> None:
    """Clear everything, then let the next run send the browser to a neutral site."""
    clear_conversation()
    st.session_state["prompt"] = None
    st.session_state["leaving"] = True


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


def _reply_dict(reply: Any) -> dict:
    """Keep what the page redraws from a Reply (in memory, for this session only)."""
    return {
        "text": reply.text,
        "route": reply.route,
        "mode": reply.mode,
        "citations": [
            {"section_id": c.section_id, "section_title": c.section_title, "quote": c.quote}
            for c in reply.citations
        ],
        "resources": list(reply.resources),
        "notice": reply.notice,
        "verification": reply.verification,
        "sticky_route": reply.sticky_route,
    }


# --- rendering -----------------------------------------------------------------------------


def _md(text: str) -> str:
    """Escape the characters Markdown would treat as formatting in a contact's name."""
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text


def resource_line(res: Any) -> str:
    """One contact as Markdown: its name and a tappable tel:/sms:/https: link."""
    hours = getattr(res, "hours", "")
    return f"**{_md(res.name)}**: {_link(res)}" + (f" ({_md(hours)})" if hours else "")


def _lines(resources: Iterable[Any]) -> list[str]:
    return [resource_line(r) for r in resources]


def help_contacts(locale: str, route: str) -> list[Any]:
    """The contacts a banner shows for a route, in the locale chosen in the sidebar."""
    res = resources_for(locale)
    if route == "abuse":
        return [*res.abuse, *res.emergency]
    return [*res.crisis, *res.crisis_text, *res.emergency]


BANNER_TITLE = {
    "crisis": "You deserve support from a person right now.",
    "abuse": "You are not to blame, and help is available.",
}


def safety_banner(route: str, contacts: Iterable[Any]) -> None:
    """The prominent banner at the top of a crisis or abuse reply."""
    body = "  \n".join(_lines(contacts))
    icon = ":material/support:" if route == "crisis" else ":material/shield:"
    st.error(f"**{BANNER_TITLE[route]}**  \n{body}", icon=icon)


def _link(res: Any) -> str:
    contact = _md(res.contact)
    return f"[{contact}](<{res.href}>)" if getattr(res, "href", None) else contact


def sticky_banner(routes: list[str], locale: str) -> None:
    """A compact help line kept at the top of the page once a safety reply was shown."""
    for route in routes:
        contacts = help_contacts(locale, route)
        lead = "Talk to someone now" if route == "crisis" else "Domestic abuse support"
        # Links only, to stay short on a phone; the reply and the sidebar carry the names.
        st.error(f"**{lead}:** " + " · ".join(_link(r) for r in contacts), icon=":material/call:")


def sources(citations: list[dict]) -> None:
    """Each citation as an expander: the section title, then the quoted passage."""
    for c in citations:
        with st.expander(f"Source: {c['section_title']}", icon=":material/menu_book:"):
            quote = "\n".join(f"> {line}" for line in c["quote"].splitlines() or [""])
            st.markdown(quote)
            st.caption(f"From the article's section “{c['section_title']}” (`{c['section_id']}`).")


def reply_footer(msg: dict, settings: Settings) -> None:
    """Notices, sources and the feedback thumbs under an answer."""
    reply = msg["reply"]
    if reply["notice"]:
        st.caption(f":material/info: {reply['notice']}")
    if reply["verification"]:
        st.caption(f":material/fact_check: {reply['verification']}")
    sources(reply["citations"])
    st.feedback(
        "thumbs",
        key=f"fb-{msg['id']}",
        on_change=save_feedback,
        args=(msg["id"], str(settings.feedback_path)),
    )


def show_message(msg: dict, settings: Settings) -> None:
    """Redraw one message of the conversation."""
    with st.chat_message(msg["role"], avatar=AVATARS[msg["role"]]):
        if msg["role"] == "user":
            st.markdown(msg["content"])
        elif msg.get("error"):
            failure_note(msg["error"], st.session_state.get("locale", settings.locale))
        else:
            reply = msg["reply"]
            if reply["route"] in SAFETY_ROUTES:
                safety_banner(reply["route"], reply["resources"])
            st.markdown(reply["text"])
            reply_footer(msg, settings)


def failure_note(sentence: str, locale: str) -> None:
    """A friendly sentence in place of an answer, with the crisis line still in reach."""
    st.warning(sentence, icon=":material/error:")
    # The message that failed may have been a crisis; help must not depend on the answer.
    st.caption(
        "If you need to talk to someone now: " + " · ".join(_lines(help_contacts(locale, "crisis")))
    )


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


def _pieces(stream: Iterable[Any], out: dict) -> Iterator[str]:
    """Pass the text pieces on to the page and keep the final Reply aside."""
    for event in stream:
        if isinstance(event, TextDelta):
            if event.text:
                yield event.text
        elif isinstance(event, Final):
            out["reply"] = event.reply


def answer(assistant: Any, prompt: str, settings: Settings) -> None:
    """Run one turn: stream the answer, then its banner, notices, sources and thumbs."""
    ss = _state()
    locale = ss.get("locale", settings.locale)
    history = _history(ss.messages)
    ss.messages.append({"id": uuid.uuid4().hex, "role": "user", "content": prompt})
    show_message(ss.messages[-1], settings)

    msg_id = uuid.uuid4().hex
    with st.chat_message("assistant", avatar=AVATARS["assistant"]):
        banner_slot = st.container()
        body = st.empty()
        out: dict = {}
        try:
            with body.container():
                streamed = st.write_stream(
                    _pieces(assistant.stream(prompt, history, locale=locale), out)
                )
            if "reply" not in out:
                raise RuntimeError("the assistant's stream ended without a reply")
        except QueryError as exc:
            body.empty()
            _fail(ss, str(exc), locale)
            return
        except Exception as exc:  # noqa: BLE001 - a sentence, never a traceback
            _log_failure("a turn", exc)
            body.empty()
            _fail(ss, TURN_FAILED, locale)
            return

        reply = out["reply"]
        if streamed != reply.text:
            # Verification may have revised what was streamed: show the checked text.
            body.markdown(reply.text)
        msg = {
            "id": msg_id,
            "role": "assistant",
            "content": reply.text,
            "route": reply.route,
            "reply": _reply_dict(reply),
        }
        ss.messages.append(msg)
        if reply.route in SAFETY_ROUTES:
            with banner_slot:
                safety_banner(reply.route, reply.resources)
        for route in (reply.route, reply.sticky_route):
            if route in SAFETY_ROUTES and route not in ss.banners:
                ss.banners.append(route)
        reply_footer(msg, settings)


def _fail(ss: Any, sentence: str, locale: str) -> None:
    ss.messages.append(
        {"id": uuid.uuid4().hex, "role": "assistant", "content": "", "error": sentence}
    )
    failure_note(sentence, locale)


def _locale_label(code: str) -> str:
    label = resources_for(code).label
    return label[:1].upper() + label[1:]


def sidebar(settings: Settings, locales: list[str]) -> None:
    """ "Need help now?": the chosen locale's lines, the locale selector, and the reset."""
    ss = st.session_state
    with st.sidebar:
        st.header("Need help now?", anchor=False)
        st.selectbox(
            "Your country or region",
            options=locales,
            key="locale",
            format_func=_locale_label,
            help="Chooses which helplines are shown and given in answers.",
        )
        res = resources_for(ss.locale)
        groups = (
            ("If you're thinking about suicide or are in crisis", [*res.crisis, *res.crisis_text]),
            ("If your partner hurts, threatens or controls you", res.abuse),
            ("If you are in danger now", res.emergency),
        )
        for title, items in groups:
            if items:
                st.markdown(f"**{title}**  \n" + "  \n".join(f"- {line}" for line in _lines(items)))
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
            "**Quick exit** (top of the page) clears this conversation and opens a weather "
            "site. Your browser history may still show this visit; a private window leaves "
            "no history."
        )
        if settings.llm_enabled:
            st.caption(
                f":material/cloud: LLM mode ({_md(settings.llm_model)}): answers are written by "
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


def welcome(settings: Settings, locale: str) -> None:
    """The empty state: what this is and is not, and where help is."""
    crisis = help_contacts(locale, "crisis")[:1]
    urgent = (
        f" If you might be in danger or are thinking about suicide: {resource_line(crisis[0])}."
        if crisis
        else ""
    )
    st.markdown(
        "Feeling far from your partner? Tell me what's going on. I answer from one article, "
        "*Feeling Disconnected From Your Partner? Six Ways to Reconnect*, and show the "
        "passage each suggestion comes from, so you can check it. I'm an automated "
        "assistant, not a therapist or a crisis service." + urgent
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


def leave() -> None:
    """Send the browser to the neutral site and show nothing else."""
    target = json.dumps(NEUTRAL_SITE)
    st.html(f"<script>window.location.replace({target});</script>", unsafe_allow_javascript=True)
    st.markdown(f"[Continue]({NEUTRAL_SITE})")
    st.stop()


@st.cache_resource(show_spinner=False)
def favicon() -> Any:
    """Draw the tab icon here: a named icon would be fetched from a font CDN on every visit."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((4, 4, 60, 60), fill="#3f6f78")
    return img


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
    if ss.pop("leaving", False):
        leave()

    try:
        settings = Settings()
    except Exception as exc:  # noqa: BLE001 - e.g. an invalid RECONNECT_* variable
        _log_failure("reading the settings", exc)
        st.title("Reconnect", anchor=False)
        st.warning(NOT_READY, icon=":material/error:")
        st.markdown("  \n".join(_lines(help_contacts(ss.get("locale", "US"), "crisis"))))
        return
    locales = known_locales()
    ss.setdefault("locale", normalize_locale(settings.locale))
    st.html(CSS)
    st.button(
        "Quick exit",
        key="quick_exit",
        type="primary",
        icon=":material/exit_to_app:",
        on_click=quick_exit,
        help="Leave now: clears this conversation and opens a weather site.",
    )
    sidebar(settings, locales)

    st.title("Reconnect", anchor=False)
    # The help banner goes here once a safety reply was shown; a direct child of the page,
    # so CSS can keep it in view while the conversation scrolls.
    top = st.container(key="sticky_help")
    # The chat input is pinned to the bottom wherever it is called; calling it first tells
    # whether this run answers a message, so the welcome is not left above the first answer.
    prompt = st.chat_input(
        "What's going on between you two?",
        key="prompt",
        max_chars=settings.max_query_chars,
    )
    if not ss.messages and not prompt:
        welcome(settings, ss.locale)

    assistant = load_assistant(settings)
    if assistant is None:
        st.warning(NOT_READY, icon=":material/error:")
        st.markdown("  \n".join(_lines(help_contacts(ss.locale, "crisis"))))
        with top:
            sticky_banner(ss.banners, ss.locale)
        return

    if not ss.messages and not prompt:
        starters()
    for msg in ss.messages:
        show_message(msg, settings)
    if prompt:
        answer(assistant, prompt, settings)
    with top:
        sticky_banner(ss.banners, ss.locale)


main()
