"""The chat page, run by Streamlit's AppTest against the real Assistant (offline, and LLM down).

Also a load check: 20 sessions asking at once against one real `streamlit run` server.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from evals.bench_ui import run_sessions
from tests.answer_helpers import TIP_PHRASES  # none may appear in a crisis or abuse reply
from tests.ui_helpers import REPO, streamlit_server  # noqa: F401 - a fixture

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
    return "\n".join(parts)


def last_reply(at: AppTest):
    msg = at.chat_message[-1]
    assert msg.name == "assistant"
    return msg


def top_banner(at: AppTest) -> str:
    """The help line kept at the top of the page (outside any chat message)."""
    inside = {el.value for msg in at.chat_message for el in msg.error}
    return "\n".join(el.value for el in at.main.error if el.value not in inside)


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
    assert "tel:988" in main  # the crisis line is in reach even on a phone, sidebar closed
    side = texts(page.sidebar)
    assert "Need help now?" in [h.value for h in page.sidebar.header]
    for needle in ("tel:988", "sms:741741", "tel:+18007997233", "tel:911"):
        assert needle in side
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
    assert user.name == "user" and user.markdown[0].value.startswith("we barely talk")
    body = reply.markdown[0].value
    assert len(body) > 80
    assert reply.expander, "an advice answer shows at least one source"
    for ex in reply.expander:
        assert ex.label.startswith("Source: ")
    for quote in quotes(reply):
        assert len(quote) > 20
        assert " ".join(quote.split()) in CORPUS, quote
    assert len(reply.get("feedback")) == 1
    assert not page.error and not page.warning
    assert "not a therapist" not in texts(page.main), "the welcome goes once the chat starts"


def test_crisis_message_shows_the_banner_and_no_tips_and_it_stays(page):
    ask(page, "I don't want to be alive anymore")
    reply = last_reply(page)
    banner = "\n".join(el.value for el in reply.error)
    assert "tel:988" in banner and "tel:911" in banner
    said = texts(reply)
    assert "988" in said
    for phrase in TIP_PHRASES:
        assert phrase.lower() not in said.lower(), phrase
    assert not reply.expander, "a crisis reply cites no article tips"
    assert "tel:988" in top_banner(page)

    ask(page, "how do we plan a date night?")
    assert "tel:988" in top_banner(page), "the help line stays for the rest of the session"
    first_reply = page.chat_message[1]
    assert "tel:988" in "\n".join(el.value for el in first_reply.error)


def test_abuse_message_gives_the_dv_line_and_no_couples_advice(page):
    ask(page, "my husband hits me when he's angry and he checks my phone every night")
    reply = last_reply(page)
    said = texts(reply)
    assert "1-800-799-7233" in said
    assert "tel:+18007997233" in "\n".join(el.value for el in reply.error)
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
    banner = "\n".join(el.value for el in reply.error)
    assert "tel:116123" in banner and "tel:999" in banner
    assert "tel:988" not in banner and "988" not in reply.markdown[0].value


def test_new_conversation_clears_history_and_banners(page):
    ask(page, "I don't want to be alive anymore")
    ask(page, "we never talk")
    assert len(page.chat_message) == 4 and top_banner(page)
    page.button(key="new_conversation").click().run()
    assert not page.chat_message
    assert not page.error and not top_banner(page)
    assert "not a therapist" in texts(page.main)
    assert page.session_state["messages"] == []


def test_quick_exit_clears_and_sends_the_browser_away(page):
    ask(page, "we fight about money all the time")
    page.button(key="quick_exit").click().run()
    assert not page.chat_message
    scripts = [h.proto.body for h in page.get("html")]
    assert any(f'window.location.replace("{NEUTRAL_SITE}")' in s for s in scripts)
    assert "money" not in texts(page.main)
    page.run()  # if the browser stayed (redirect blocked), the conversation is still gone
    assert not page.chat_message and page.session_state["messages"] == []


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
    assert reply.warning and "message" in reply.warning[0].value.lower()
    assert "tel:988" in texts(reply), "help stays in reach when a turn fails"


def test_a_failing_turn_is_a_sentence_and_the_logs_keep_no_words(page, monkeypatch, caplog):
    from assistant.assistant import Assistant

    def broken(self, message, history, locale=None):
        yield "Partial "
        raise RuntimeError(f"exploded while reading: {message}")

    monkeypatch.setattr(Assistant, "stream", broken)
    with caplog.at_level(logging.ERROR, logger="reconnect.ui"):
        ask(page, "my girlfriend ignores me at dinner")
    reply = last_reply(page)
    assert "Sorry, something went wrong" in reply.warning[0].value
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
    assert "couldn't start" in "\n".join(w.value for w in at.warning)
    assert "tel:988" in texts(at.main) and "tel:988" in texts(at.sidebar)


# --- load --------------------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.slow
def test_twenty_sessions_at_once_without_errors_or_crosstalk(streamlit_server):  # noqa: F811
    result = run_sessions(streamlit_server.url, 20, turns=1)
    assert result["errors"] == []
    assert result["crosstalk"] == []
    assert result["turns"] == 20
    print(f"20 sessions: turn p50 {result['turn_p50_s']} s, p95 {result['turn_p95_s']} s")
    assert result["turn_p95_s"] < 60


def test_streamlit_config_has_no_telemetry_and_runs_headless():
    import tomllib

    cfg = tomllib.loads(Path(REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["headless"] is True
    assert cfg["client"]["showErrorDetails"] == "none"
