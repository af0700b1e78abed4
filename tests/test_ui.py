"""The chat page, run by Streamlit's AppTest against the real Assistant (offline, and LLM down).

Also, against one real `streamlit run` server: 20 sessions asking at once, and a message
sent while another is answered (both answered, in order).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from assistant.testing.streamlit_server import WsSession, run_sessions
from tests.answer_helpers import TIP_PHRASES  # none may appear in a crisis or abuse reply
from tests.ui_helpers import REPO, cold_server, streamlit_server  # noqa: F401 - fixtures

APP = str(REPO / "ui" / "app.py")
CORPUS = " ".join((REPO / "corpus" / "reconnecting-with-your-partner.md").read_text().split())
NEUTRAL_SITE = "https://www.weather.com/"


# The first load builds the index and loads the embedding model; later ones reuse them.
COLD_TIMEOUT = 600
TURN_TIMEOUT = 120


@pytest.fixture(scope="module")
def ui_data_dir(tmp_path_factory):
    """One index for the module: the Assistant is cached per settings, like on a server."""
    return tmp_path_factory.mktemp("ui-data")


@pytest.fixture
def feedback_db(monkeypatch, ui_data_dir, tmp_path):
    monkeypatch.setenv("RECONNECT_DATA_DIR", str(ui_data_dir))
    path = tmp_path / "feedback.sqlite3"
    monkeypatch.setenv("RECONNECT_FEEDBACK_DB", str(path))
    return path


@pytest.fixture
def page(feedback_db):
    """The page after its first run, with the Assistant ready."""
    at = AppTest.from_file(APP, default_timeout=TURN_TIMEOUT)
    at.run(timeout=COLD_TIMEOUT)
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def texts(node) -> str:
    """Every piece of text a person would read in a part of the page, joined."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success"):
        parts += [el.value for el in getattr(node, kind)]
    parts += [ex.label for ex in node.expander]
    parts += [el.value for el in node.text]
    parts += [h.proto.body for h in node.get("html")]
    return "\n".join(parts)


def last_reply(at: AppTest):
    msg = at.chat_message[-1]
    assert msg.name == "assistant"
    return msg


def banner(node) -> str:
    """The safety banners (the app's own markup) in a part of the page."""
    return "\n".join(h.proto.body for h in node.get("html") if "rc-banner" in h.proto.body)


def top_banner(at: AppTest) -> str:
    """The help line kept at the top of the page (outside any chat message)."""
    return "\n".join(h.proto.body for h in at.main.get("html") if "rc-sticky" in h.proto.body)


def done_marks(seen: list[str]) -> list[str]:
    """The hidden marks of complete answers (not the page script that looks for them)."""
    return [t for t in seen if t.startswith("<span data-rc-done=")]


def quotes(reply) -> list[str]:
    out = []
    for ex in reply.expander:
        quote = "\n".join(m.value for m in ex.markdown if m.value.startswith(">"))
        out.append(" ".join(re.sub(r"^> ?", "", line) for line in quote.splitlines()))
    return out


# --- flows -----------------------------------------------------------------------------------


def test_first_visit_shows_welcome_help_and_starters(page):
    main = texts(page.main)
    assert "not a therapist" in main
    assert "tel:988" in main and "sms:988" in main  # one tap from the main view
    assert page.selectbox(key="locale").value == "US"
    side = texts(page.sidebar)
    assert "Need help now?" in [h.value for h in page.sidebar.header]
    for needle in (
        "tel:988",
        "sms:741741?body=HOME",
        "tel:+18007997233",
        "sms:88788?body=START",
        "https://thehotline.org/",
        "tel:911",
    ):
        assert needle in side, needle
    starters = [b for b in page.button if b.key and b.key.startswith("starter-")]
    assert len(starters) >= 3
    assert not page.chat_message
    assert "Offline mode" in side


def test_every_control_has_a_label(page):
    ask(page, "we barely talk anymore")
    for button in page.button:
        assert button.label.strip(), button.key
    for box in page.selectbox:
        assert box.label.strip()
    assert page.chat_input[0].placeholder.strip()


def test_starter_prompt_fills_the_input_without_sending(page):
    starter = next(b for b in page.button if b.key == "starter-1")
    starter.click().run()
    assert page.chat_input[0].value == starter.label
    assert not page.chat_message


def test_question_gets_a_streamed_answer_with_verbatim_sources(page):
    ask(page, "we barely talk anymore, it feels like we're roommates")
    user, reply = page.chat_message
    assert user.name == "user" and user.text[0].value.startswith("we barely talk")
    body = reply.markdown[0].value
    assert len(body) > 80
    assert reply.expander, "an advice answer shows at least one source"
    for ex in reply.expander:
        assert ex.label.startswith("Source: ")
    for quote in quotes(reply):
        assert len(quote) > 20
        assert " ".join(quote.split()) in CORPUS, quote
    assert len(reply.get("feedback")) == 1
    assert not any('class="rc-note"' in h.proto.body for h in reply.get("html"))
    assert "not a therapist" not in texts(page.main), "the welcome goes once the chat starts"
    assert page.session_state["pending"] == []


def test_the_persons_words_are_plain_text(page):
    raw = "# help\n**me** <img src=http://example.invalid/x.png> ![x](http://example.invalid/y)"
    ask(page, raw)
    user = page.chat_message[0]
    assert [t.value for t in user.text] == [raw]
    assert not user.markdown, "no Markdown rendering of what the person wrote"
    reply = page.chat_message[1]
    assert all("![" not in m.value.replace("!\\[", "") for m in reply.markdown)


def test_crisis_message_shows_the_banner_and_no_tips_and_it_stays(page):
    ask(page, "I don't want to be alive anymore")
    reply = last_reply(page)
    shown = banner(reply)
    assert "tel:988" in shown and "tel:911" in shown and "sms:741741?body=HOME" in shown
    assert 'role="alert"' not in shown, "announced once, by the page's live region"
    said = texts(reply)
    assert "988" in said
    for phrase in TIP_PHRASES:
        assert phrase.lower() not in said.lower(), phrase
    assert not reply.expander, "a crisis reply cites no article tips"
    assert "tel:988" in top_banner(page)

    ask(page, "how do we plan a date night?")
    assert "tel:988" in top_banner(page), "the help line stays for the rest of the session"
    assert "tel:988" in banner(page.chat_message[1])


def test_abuse_message_gives_the_dv_line_and_no_couples_advice(page):
    ask(page, "my husband hits me when he's angry and he checks my phone every night")
    reply = last_reply(page)
    said = texts(reply)
    assert "1-800-799-7233" in said
    assert "tel:+18007997233" in banner(reply) and "sms:88788?body=START" in banner(reply)
    for phrase in TIP_PHRASES:
        assert phrase.lower() not in said.lower(), phrase
    assert not re.search(
        r"\b(try|consider|book|start) (couples|marriage) (therapy|counsel)", said, re.IGNORECASE
    )
    assert "tel:+18007997233" in top_banner(page)


def test_locale_switch_changes_the_numbers(page):
    page.selectbox(key="locale").set_value("UK").run()
    side = texts(page.sidebar)
    assert "tel:116123" in side and "tel:999" in side and "0808 2000 247" in side
    assert "988" not in side and "tel:911" not in side
    ask(page, "I want to kill myself tonight")
    reply = last_reply(page)
    assert "tel:116123" in banner(reply) and "tel:999" in banner(reply)
    assert "tel:988" not in banner(reply) and "988" not in reply.markdown[0].value


def test_switching_country_mid_conversation_retells_earlier_replies(page):
    ask(page, "I don't want to be alive anymore")
    ask(page, "we never talk anymore")
    page.selectbox(key="locale").set_value("UK").run()
    everything = texts(page.main) + texts(page.sidebar)
    for us in ("tel:988", "988 Suicide", "tel:911", "741741"):
        assert us not in everything, us
    for uk in ("tel:116123", "Samaritans", "tel:999"):
        assert uk in banner(page.chat_message[1]) + top_banner(page), uk
    assert "116 123" in page.chat_message[1].markdown[0].value


def test_new_conversation_clears_history_and_banners(page):
    ask(page, "I don't want to be alive anymore")
    ask(page, "we never talk")
    assert len(page.chat_message) == 4 and top_banner(page)
    page.button(key="new_conversation").click().run()
    assert not page.chat_message
    assert not top_banner(page)
    assert "not a therapist" in texts(page.main)
    assert page.session_state["messages"] == [] and page.session_state["pending"] == []


def test_quick_exit_runs_on_the_client_and_clears_the_server_too(page):
    ask(page, "we fight about money all the time")
    scripts = [h.proto.body for h in page.get("html") if h.proto.unsafe_allow_javascript]
    assert any("location.replace" in s and NEUTRAL_SITE in s for s in scripts)
    page.button(key="forget_button").click().run()  # what the page's script clicks on its way
    assert not page.chat_message
    assert "money" not in texts(page.main)
    assert page.session_state["messages"] == [] and page.session_state["pending"] == []


def test_feedback_is_saved_without_the_message(page, feedback_db):
    secret = "since the move to Tromsø we barely talk"
    ask(page, secret)
    reply = last_reply(page)
    cited = {m.group(1) for m in re.finditer(r"\(`([a-z0-9-]+)`\)", texts(reply))}
    assert cited
    reply.get("feedback")[0].set_value(1).run()
    assert not page.exception

    rows = (
        sqlite3.connect(feedback_db)
        .execute("SELECT rating, route, mode, sections, locale FROM feedback")
        .fetchall()
    )
    assert len(rows) == 1
    rating, route, mode, sections, locale = rows[0]
    assert (rating, route, mode, locale) == ("up", "advice", "offline", "US")
    assert set(sections.split(",")) == cited
    on_disk = b"".join(p.read_bytes() for p in feedback_db.parent.glob(feedback_db.name + "*"))
    for word in ("Troms", "barely", "move"):
        assert word.encode() not in on_disk

    last_reply(page).get("feedback")[0].set_value(0).run()  # changed their mind
    rows = sqlite3.connect(feedback_db).execute("SELECT rating FROM feedback").fetchall()
    assert rows == [("down",)]


@pytest.mark.server
def test_llm_endpoint_down_falls_back_with_a_notice(feedback_db, monkeypatch):
    from assistant.testing.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        base_url = server.base_url
    # The test server is stopped: its port is closed, as when an endpoint goes down.
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("RECONNECT_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("RECONNECT_LLM_TIMEOUT", "3")
    at = AppTest.from_file(APP, default_timeout=TURN_TIMEOUT)
    at.run(timeout=COLD_TIMEOUT)
    assert "LLM mode" in texts(at.sidebar)
    ask(at, "how can I tell my partner I feel lonely without blaming them?")
    reply = last_reply(at)
    assert len(reply.markdown[0].value) > 80, "still an answer"
    assert reply.expander, "still with its sources"
    notes = "\n".join(c.value for c in reply.caption)
    assert notes, "the fallback notice is under the reply"
    assert at.session_state["messages"][-1]["reply"]["mode"] == "fallback"
    assert not at.warning and not at.exception


@pytest.mark.server
def test_llm_answer_is_streamed_with_its_sources(feedback_db, monkeypatch):
    from assistant.testing.fake_openai import FakeOpenAI, Reply, grounded_answer

    with FakeOpenAI(default=lambda body: Reply(grounded_answer(body))) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        at = AppTest.from_file(APP, default_timeout=TURN_TIMEOUT)
        at.run(timeout=COLD_TIMEOUT)
        ask(at, "how can I tell my partner I feel lonely without blaming them?")
        assert server.requests and server.requests[-1].stream, "asked for a stream"
    assert "LLM mode" in texts(at.sidebar)
    reply = last_reply(at)
    assert at.session_state["messages"][-1]["reply"]["mode"] == "llm"
    assert reply.expander
    for quote in quotes(reply):
        assert " ".join(quote.split()) in CORPUS, quote
    assert not at.warning and not at.exception


def test_unreadable_message_gets_a_sentence_not_a_traceback(page):
    ask(page, "\x00\x01\x02")
    reply = last_reply(page)
    note = texts(reply)
    assert "rc-note" in note and "message" in note.lower()
    assert "tel:988" in note, "help stays in reach when a turn fails"


def test_a_long_message_is_answered_and_flagged(page):
    text = "we drifted apart after the baby and I miss us. " * 500  # 23,500 characters
    ask(page, text)
    user = page.chat_message[0]
    assert user.text[0].value == text.strip() or user.text[0].value == text
    assert "first 20,000" in texts(user)
    assert last_reply(page).markdown, "still answered"


def test_a_failing_turn_is_a_sentence_and_the_logs_keep_no_words(page, monkeypatch, caplog):
    from assistant.assistant import Assistant, TextDelta

    def broken(self, message, history, locale=None):
        yield TextDelta("Partial ")
        raise RuntimeError(f"exploded while reading: {message}")

    monkeypatch.setattr(Assistant, "stream", broken)
    with caplog.at_level(logging.ERROR, logger="reconnect.ui"):
        ask(page, "my girlfriend ignores me at dinner")
    reply = last_reply(page)
    assert "Sorry, something went wrong" in texts(reply)
    assert "Traceback" not in texts(page.main)
    assert "RuntimeError" in caplog.text and "app.py" in caplog.text
    assert "girlfriend" not in caplog.text, caplog.text
    assert "exploded" not in caplog.text, caplog.text


def test_assistant_that_cannot_start_is_a_sentence_with_help(feedback_db, monkeypatch, tmp_path):
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    monkeypatch.setenv("RECONNECT_CORPUS_DIR", str(empty))
    at = AppTest.from_file(APP, default_timeout=TURN_TIMEOUT).run(timeout=COLD_TIMEOUT)
    assert not at.exception
    assert "couldn" in texts(at.main) and "start" in texts(at.main)
    assert "tel:988" in texts(at.main) and "tel:988" in texts(at.sidebar)
    ask(at, "is anyone there? I can't go on")
    assert "tel:988" in texts(last_reply(at)), "a message sent anyway gets the lines, not silence"


def test_twenty_sessions_at_once_without_errors_or_crosstalk(streamlit_server):  # noqa: F811
    result = run_sessions(streamlit_server.url, 20, turns=1)
    assert result["errors"] == []
    assert result["crosstalk"] == []
    assert result["turns"] == 20
    print(f"20 sessions: turn p50 {result['turn_p50_s']} s, p95 {result['turn_p95_s']} s")


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_crisis_message_sent_during_the_cold_start_gets_its_crisis_reply(cold_server):  # noqa: F811
    session = WsSession(cold_server.url, timeout=600)
    try:
        session.start_load()  # the first run: it waits for the Assistant to load
        crisis = "I don't want to be alive anymore"
        session.submit(crisis)
        session.read_until(crisis)  # its bubble is drawn while the Assistant still loads
        session.submit("hello?")  # sent while the first waits: queued behind it
        seen: list[str] = []
        for _ in range(20):
            seen = session.read_run().texts
            if len(done_marks(seen)) == 2:
                break
        assert [t for t in seen if t in (crisis, "hello?")] == [crisis, "hello?"]
        # The first answer (the bubbles are drawn first, then each answer under its own) is
        # the crisis reply: its banner comes before the first answer's done mark.
        first_answer = seen[seen.index(crisis) : seen.index(done_marks(seen)[0])]
        banners = [t for t in first_answer if t.startswith('<section class="rc-banner')]
        assert banners and "rc-banner-crisis" in banners[0] and "tel:988" in banners[0], (
            "the crisis message got its crisis reply"
        )
    finally:
        session.close()


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_message_sent_during_an_answer_is_answered_after_it(streamlit_server):  # noqa: F811
    """A client that doesn't hold its input (no browser): the page's queue keeps both."""
    session = WsSession(streamlit_server.url)
    try:
        session.load()
        first, second = "first: we argue about chores", "second: how do we stop?"
        session.submit(first)
        session.read_until(first)  # its bubble is drawn: the answer is being written now
        session.submit(second)
        seen: list[str] = []
        for _ in range(10):
            seen = session.read_run().texts
            if len(done_marks(seen)) == 2:
                break
        assert [t for t in seen if t in (first, second)] == [first, second]
        assert len(done_marks(seen)) == 2, "both answered"
    finally:
        session.close()


def test_streamlit_config_has_no_telemetry_and_runs_headless():
    import tomllib

    cfg = tomllib.loads(Path(REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["headless"] is True
    assert cfg["client"]["showErrorDetails"] == "none"
