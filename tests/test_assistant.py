"""The Assistant: one turn end to end, offline, with the real retriever and the real triage."""

from __future__ import annotations

import pytest

from assistant.assistant import (
    STAGES,
    Assistant,
    Final,
    Reply,
    TextDelta,
    clean_history,
    most_severe,
)
from assistant.config import Settings
from assistant.corpus import find_verbatim
from assistant.errors import QueryError
from assistant.text import clean_user_text
from tests.answer_helpers import (  # noqa: F401 - fixtures
    REPO,
    TIP_PHRASES,
    offline_assistant_fixture,
    triage_fixture,
)


@pytest.fixture(scope="module")
def real(retriever, triage, offline_assistant):
    """The offline Assistant with the real triage (as Assistant.from_settings builds it)."""
    return Assistant(Settings(corpus_dir=REPO / "corpus"), retriever=retriever, triage=triage,
                     bank=offline_assistant.bank)


# ---------------------------------------------------------------- clean_user_text


def test_clean_user_text_strips_controls_and_normalises_space():
    text, notice = clean_user_text("  we\x00 barely\u202e talk\t\t anymore \ud800\r\n\r\n\r\nok ",
                                   100)
    assert text == "we barely talk anymore\n\nok" and notice is None


def test_clean_user_text_truncates_with_a_notice():
    text, notice = clean_user_text("word " * 1000, 200)
    assert len(text) <= 200 and text.endswith("word")
    assert notice and "first" in notice and "\n" not in notice


@pytest.mark.parametrize("raw", ["", "   ", "\x00\x01\u200b", None])
def test_clean_user_text_refuses_nothing(raw):
    with pytest.raises(QueryError):
        clean_user_text(raw, 100)


# ---------------------------------------------------------------- the reply object


def test_reply_has_the_documented_shape(offline_assistant):
    reply = offline_assistant.respond("how can I show love in everyday life when we're busy")
    d = reply.to_dict()
    assert {"text", "route", "mode", "citations", "resources", "notice", "timings"} <= set(d)
    assert d["mode"] == "offline" and d["route"] == "advice"
    assert d["citations"] and {"section_id", "section_title", "quote"} <= set(d["citations"][0])
    assert set(STAGES) <= set(d["timings"])
    assert d["timings"]["total"] >= d["timings"]["embed"] > 0


def test_stream_yields_text_then_the_reply(offline_assistant):
    items = list(offline_assistant.stream("we have kids, jobs, a mortgage, when did we stop "
                                          "being a couple?"))
    assert isinstance(items[-1], Final) and isinstance(items[-1].reply, Reply)
    assert all(isinstance(i, TextDelta) for i in items[:-1]) and items[:-1]
    assert "".join(i.text for i in items[:-1]) == items[-1].reply.text


def test_advice_reply_is_grounded_and_identical_on_repeat(offline_assistant):
    message = "we both work long hours and by the evening we just collapse in front of our phones"
    a = offline_assistant.respond(message)
    b = offline_assistant.respond(message)
    assert a.text == b.text and a.citations == b.citations
    assert a.citations
    for c in a.citations:
        assert find_verbatim(c.quote, offline_assistant.retriever.articles)


def test_a_long_message_is_cut_with_a_notice(offline_assistant):
    reply = offline_assistant.respond("we never talk anymore " * 400)
    assert reply.notice and "first" in reply.notice


def test_empty_message_is_a_query_error(offline_assistant):
    with pytest.raises(QueryError):
        offline_assistant.respond("   \x00  ")


def test_malformed_history_is_ignored():
    hist = clean_history([{"role": "user", "content": "hi"}, {"role": "system", "content": "x"},
                          {"content": "no role"}, "text", {"role": "assistant", "content": 5},
                          {"role": "assistant", "content": "ok", "route": "advice"}])
    assert hist == [{"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "ok", "route": "advice"}]
    assert most_severe(None, "abuse", "crisis", "advice") == "crisis"


# ---------------------------------------------------------------- routes, real triage


def test_crisis_reply_has_the_line_and_no_article_tips(real):
    reply = real.respond("I want to end my life, nothing matters anymore")
    assert reply.route == "crisis" and reply.sticky_route == "crisis"
    assert "988" in reply.text and "Are you safe" in reply.text
    assert not any(p in reply.text for p in TIP_PHRASES)
    assert reply.citations == []
    assert any("988" in r.contact for r in reply.resources)


def test_crisis_reply_uses_the_locale(real):
    reply = real.respond("I want to end my life, nothing matters anymore", locale="UK")
    assert "116 123" in reply.text and "999" in reply.text


def test_abuse_reply_has_the_dv_line_and_no_begin_with_yourself(real):
    reply = real.respond("he hit me last night and says it's my fault for nagging")
    assert reply.route == "abuse"
    assert "1-800-799-7233" in reply.text
    assert not any(p in reply.text for p in TIP_PHRASES)
    assert "not your fault" in reply.text.lower()


def test_off_topic_reply_has_no_tips(real):
    reply = real.respond("what's the capital of Australia")
    assert reply.route == "off_topic" and reply.citations == []
    assert not any(p in reply.text for p in TIP_PHRASES)


def test_therapy_reply_names_the_articles_case_for_a_therapist(real):
    reply = real.respond("we've tried everything for two years, nothing changes, maybe we need "
                         "couples counselling?")
    assert reply.route == "therapy"
    tip6 = [c for c in reply.citations if c.section_id == "tip-6"]
    assert tip6 and any("couples therapy" in c.quote or "therapy provides" in c.quote
                        for c in tip6)
    assert "therapist" in reply.text.lower()
    assert reply.resources  # directories to find one


def test_resources_stay_after_a_crisis_turn(real):
    first = real.respond("I want to end my life, nothing matters anymore")
    history = [{"role": "user", "content": "I want to end my life, nothing matters anymore"},
               {"role": "assistant", "content": first.text, "route": first.route}]
    later = real.respond("how can we spend more quality time together?", history)
    assert later.sticky_route == "crisis"
    assert "988" in later.text
    assert any("988" in r.contact for r in later.resources)


def test_after_abuse_later_advice_keeps_safety_and_drops_relationship_tips(real):
    first = real.respond("he hit me last night and says it's my fault for nagging")
    history = [{"role": "user", "content": "he hit me last night and says it's my fault"},
               {"role": "assistant", "content": first.text, "route": first.route}]
    later = real.respond("how can I be more loving so things get better between us?", history)
    assert later.sticky_route == "abuse"
    assert "1-800-799-7233" in later.text
    for phrase in ("Begin with yourself", "Be loving in little ways", "Don’t wait for your",
                   "couples therapy can be a remarkable step"):
        assert phrase not in later.text
    assert {c.section_id for c in later.citations} <= {"tip-5"}


def test_an_index_rebuild_is_logged_not_shown_to_the_person(tmp_path, caplog):
    import logging

    s = Settings(corpus_dir=REPO / "corpus", data_dir=tmp_path / "fresh")
    with caplog.at_level(logging.INFO, logger="reconnect"):
        a = Assistant.from_settings(s)
    assert "search index built" in caplog.text
    reply = a.respond("how do we get the spark back after the baby?")
    assert reply.notice is None


def test_triage_reads_the_end_of_a_long_post(offline_assistant, retriever):
    from assistant.triage import load_triage

    a = Assistant(Settings(corpus_dir=REPO / "corpus", max_query_chars=500),
                  retriever=retriever, triage=load_triage(None), bank=offline_assistant.bank)
    post = "we used to cook together and laugh a lot. " * 40 + "i want to kill myself tonight."
    reply = a.respond(post)
    assert reply.route == "crisis"
    assert "988" in reply.text
    assert reply.notice and "first" in reply.notice


def test_advice_that_leads_with_therapy_says_how_to_find_one(offline_assistant):
    reply = offline_assistant.respond("should we see a couples counsellor together?")
    assert reply.route == "advice"  # the scripted triage: not the therapy route
    assert reply.citations[0].section_id == "tip-6"
    assert "Finding a couples therapist" in reply.text
    assert reply.resources
