"""Safety replies: right contacts per locale, care first, and none of what must never appear."""

from __future__ import annotations

import re

import pytest

from assistant.resources import known_locales, resources_for
from assistant.safety import (
    safety_reply,
    sticky_note,
    sticky_resources,
    therapy_note,
    therapy_resources,
)

LOCALES = known_locales()

# The article's tips assume a safe relationship; none belongs in a crisis or abuse reply.
ARTICLE_TIPS = [
    "begin with yourself", "be loving in little ways", "quality time", "date night",
    "don't wait for your partner", "don't wait for your spouse", "own your role",
    "owning up to your role", "be honest about feeling disconnected", "know when to hire a pro",
    "don't depend exclusively", "tip 1", "tip 2", "tip 3", "tip 4", "tip 5", "tip 6",
]
METHOD_WORDS = ["pills", "overdose", "dose", "rope", "bridge", "gun", "knife", "jump", "how many"]
BANNED_CRISIS = ["successful attempt", "failed attempt", "commit suicide", "i promise", "secret"]
COUPLES_THERAPY_ADVICE = [
    "try couples therapy", "try couples counselling", "try couples counseling",
    "find a couples therapist", "see a couples therapist", "marriage counseling could",
    "go to couples", "attend couples",
]


def words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize("locale", LOCALES)
def test_crisis_reply_has_the_locales_lines_asks_about_safety_and_offers_a_plan(locale):
    res = resources_for(locale)
    reply = safety_reply("crisis", locale)
    low = reply.text.lower()
    assert res.crisis[0].contact in reply.text
    for r in res.crisis_text:
        assert r.contact in reply.text
    assert f"call {res.emergency_number}" in reply.text
    assert "are you safe right now?" in low
    assert "safety plan" in low and "keep talking" in low
    assert "automated" in low  # honest about what it is
    assert reply.resources[0] == res.crisis[0]
    assert words(reply.text) < 200  # readable on a phone


@pytest.mark.parametrize("locale", LOCALES)
def test_crisis_reply_has_no_article_tips_no_method_details_no_banned_words(locale):
    low = safety_reply("crisis", locale).text.lower()
    for phrase in ARTICLE_TIPS + METHOD_WORDS + BANNED_CRISIS:
        assert phrase not in low, phrase


@pytest.mark.parametrize("locale", LOCALES)
def test_abuse_reply_believes_them_gives_the_dv_line_and_advises_against_couples_therapy(locale):
    res = resources_for(locale)
    reply = safety_reply("abuse", locale)
    low = reply.text.lower()
    for r in res.abuse:
        assert r.contact in reply.text
    assert f"call {res.emergency_number}" in reply.text
    assert "not your fault" in low
    assert "couples counselling isn't recommended while there is abuse" in low
    assert "browser history" in low
    assert "safety plan" in low and "including if you're staying" in low
    for phrase in ARTICLE_TIPS + COUPLES_THERAPY_ADVICE:
        assert phrase not in low, phrase
    # offer options; never tell them to leave or to confront
    assert not re.search(r"\byou (should|must|need to) (leave|confront)\b", low)
    assert {r.name for r in reply.resources} >= {r.name for r in res.abuse}
    assert words(reply.text) < 200


@pytest.mark.parametrize("locale", LOCALES)
def test_off_topic_reply_is_one_kind_line_of_scope(locale):
    reply = safety_reply("off_topic", locale)
    assert reply.resources == []
    assert "\n" not in reply.text
    assert "relationship" in reply.text.lower()
    assert words(reply.text) < 40


def test_sticky_crisis_keeps_the_crisis_line_on_later_off_topic_replies():
    reply = safety_reply("off_topic", "US", sticky="crisis")
    assert "988" in reply.text and "911" in reply.text
    assert any(r.href == "tel:988" for r in reply.resources)


def test_abuse_reply_after_a_crisis_turn_also_carries_the_crisis_line():
    reply = safety_reply("abuse", "UK", sticky="crisis")
    assert "116 123" in reply.text and "0808 2000 247" in reply.text


def test_crisis_reply_with_abuse_signals_adds_the_dv_line():
    plain = safety_reply("crisis", "US")
    both = safety_reply("crisis", "US", flags=("crisis", "abuse"))
    assert "1-800-799-7233" not in plain.text
    assert "1-800-799-7233" in both.text
    assert any("Domestic Violence" in r.name for r in both.resources)


@pytest.mark.parametrize("route", ["advice", "therapy", "nonsense"])
def test_only_safety_routes_have_a_safety_reply(route):
    with pytest.raises(ValueError):
        safety_reply(route, "US")


@pytest.mark.parametrize(("sticky", "needle"), [("crisis", "988"), ("abuse", "1-800-799-7233")])
def test_sticky_note_and_resources_for_the_answering_step(sticky, needle):
    assert needle in sticky_note(sticky, "US")
    assert any(needle in r.contact for r in sticky_resources(sticky, "US"))
    assert sticky_note(None, "US") == "" and sticky_resources(None, "US") == []


def test_therapy_note_explains_how_to_find_a_couples_therapist():
    note = therapy_note("US")
    for name in ("AAMFT", "Psychology Today", "Gottman", "ICEEFT", "Open Path", "Employee"):
        assert name in note
    assert "individual support" in note  # abuse screen: afraid of the other -> not couples
    assert [r.name for r in therapy_resources("US")][0].startswith("AAMFT")
    assert "Open Path" not in therapy_note("UK")
