"""`assistant ask` and `assistant chat`."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from assistant.cli import chat_cmds, main
from assistant.testing.fake_openai import Status
from tests.answer_helpers import (  # noqa: F401 - fixtures
    SECRET_KEY,
    fake_openai_fixture,
    offline_assistant_fixture,
)


@pytest.mark.slow
def test_ask_json_end_to_end(capsys):
    """The real wiring: settings -> index -> triage -> offline reply, as JSON."""
    rc = main(["ask", "--json", "we barely talk anymore, it feels like we're roommates"])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)
    assert d["mode"] == "offline" and d["route"] == "advice" and d["act"] == "situation"
    assert d["citations"] and all({"section_id", "quote"} <= set(c) for c in d["citations"])
    assert isinstance(d["resources"], list) and "roommates" in d["text"]


@pytest.mark.slow
@pytest.mark.server
def test_ask_with_a_failing_endpoint_prints_the_offline_answer_and_a_notice(
    capsys, monkeypatch, fake_openai
):
    fake_openai.default = Status(500)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.setenv("RECONNECT_LLM_MAX_RETRIES", "0")
    rc = main(["ask", "how can I show my wife I appreciate her?"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "(tip " in captured.out  # the grounded offline answer
    assert "**" not in captured.out and "*(tip" not in captured.out  # clean text, no Markdown
    assert "language model wasn't available" in captured.out
    assert SECRET_KEY not in captured.out + captured.err
    assert "Traceback" not in captured.out + captured.err
    assert fake_openai.requests  # it did try the endpoint


def chat(assistant, monkeypatch, lines: list[str]) -> str:
    monkeypatch.setattr(chat_cmds, "build_assistant", lambda args: assistant)
    out = io.StringIO()
    args = argparse.Namespace(locale=None, offline=False)
    rc = chat_cmds.cmd_chat(args, stdin=io.StringIO("\n".join(lines) + "\n"), out=out)
    assert rc == 0
    return out.getvalue()


def test_chat_keeps_history_for_follow_ups_and_shows_sources(offline_assistant, monkeypatch):
    first = offline_assistant.respond("we barely talk anymore, it feels like we're roommates")
    second_tip = [c for c in first.citations if c.section_id != "intro"][1]
    text = chat(offline_assistant, monkeypatch, [
        "we barely talk anymore, it feels like we're roommates",
        "what about the second one?",
        "/sources",
        "/quit",
        "never reached",
    ])
    assert "roommates" in text and "**" not in text  # rendered, not raw Markdown
    title = second_tip.section_title.split('. ', 1)[1]
    assert f"is {title}. More of what the article says there" in text
    assert f"[{second_tip.section_id}]" in text  # /sources lists the last reply's passages
    assert "never reached" not in text


def test_chat_reset_forgets_the_conversation(offline_assistant, monkeypatch):
    text = chat(offline_assistant, monkeypatch, [
        "we barely talk anymore, it feels like we're roommates",
        "/reset",
        "what about the second one?",
    ])
    assert "Started over" in text
    assert text.count("More of what the article says") == 0  # no history: no "second one"


def test_chat_survives_empty_and_unknown_input(offline_assistant, monkeypatch):
    text = chat(offline_assistant, monkeypatch, ["", "\x00\x00", "/dance", "/help"])
    assert "error:" in text and "Unknown command /dance" in text
    assert text.count("/reset") >= 2  # the help was shown again


def test_chat_crisis_turn_shows_resources(offline_assistant, monkeypatch):
    text = chat(offline_assistant, monkeypatch,
                ["I want to end my life, nothing matters anymore"])
    assert "988" in text and "*(tip" not in text


def chat_jsonl(assistant, monkeypatch, lines: list[str]) -> tuple[int, list[dict]]:
    monkeypatch.setattr(chat_cmds, "build_assistant", lambda args: assistant)
    out = io.StringIO()
    args = argparse.Namespace(locale=None, offline=True, jsonl=True)
    rc = chat_cmds.cmd_chat(args, stdin=io.StringIO("\n".join(lines) + "\n"), out=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_chat_jsonl_answers_each_conversation_as_the_page_would(offline_assistant, monkeypatch):
    turns = ["hi", "my wife and I barely talk since the baby came", "what else", "thanks"]
    rc, rows = chat_jsonl(offline_assistant, monkeypatch, [
        json.dumps({"id": "a", "turns": turns}),
        json.dumps({"id": "b", "turns": ["what is tip 3"], "locale": "UK"}),
    ])
    assert rc == 0 and [r["id"] for r in rows] == ["a", "b"]
    replies = rows[0]["replies"]
    assert [r["act"] for r in replies] == ["greeting", "situation", "more", "thanks"]
    for r in replies:
        assert set(r) == {"text", "route", "mode", "act", "citations", "resources"}
    # The same history as the interactive chat and the page: the same replies.
    history: list[dict] = []
    for message, got in zip(turns, replies):
        expected = offline_assistant.respond(message, history)
        assert got["text"] == expected.text
        history += [{"role": "user", "content": message},
                    {"role": "assistant", "content": expected.text, "route": expected.route}]
    assert rows[1]["replies"][0]["citations"][0]["section_id"] == "tip-3"


def test_chat_jsonl_reports_bad_lines_without_a_traceback(offline_assistant, monkeypatch):
    rc, rows = chat_jsonl(offline_assistant, monkeypatch, [
        "not json", json.dumps({"id": 7, "turns": []}), json.dumps([1, 2]),
        json.dumps({"id": "ok", "turns": ["hello"]}),
    ])
    assert rc == 1
    assert [("error" in r) for r in rows] == [True, True, True, False]
    assert rows[1]["id"] == 7 and "turns" in rows[1]["error"]
    assert rows[3]["replies"][0]["act"] == "greeting"
