"""Safety replies and the turn policy: right contacts per locale, care first, the cases of
SAFETY.md (someone else in danger, a threat used to stop leaving, the person who harms, a
message not in English), and none of what must never appear."""

from __future__ import annotations

import re

import pytest

from assistant.resources import known_locales, resources_for
from assistant.safety import (
    most_severe,
    safety_reply,
    sticky_note,
    sticky_resources,
    therapy_note,
    therapy_resources,
    turn_policy,
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


# ---------------------------------------------------------------- the new cases (SAFETY.md)

SHAMING = ["monster", "disgusting", "shame on you", "you should be ashamed", "abuser", "evil"]


@pytest.mark.parametrize("locale", LOCALES)
def test_someone_else_in_danger_gets_the_emergency_number_first_and_how_to_stay(locale):
    res = resources_for(locale)
    reply = safety_reply("crisis", locale, flags=("crisis", "other_at_risk"))
    first_line = reply.text.splitlines()[0]
    assert f"Call {res.emergency_number} now" in first_line
    low = reply.text.lower()
    assert "stay with them" in low and "don't leave them alone" in low
    assert "worried about someone else" in low
    assert res.crisis[0].contact in reply.text
    assert reply.resources[0] == res.emergency[0]
    for phrase in ARTICLE_TIPS:
        assert phrase not in low, phrase
    assert words(reply.text) < 200


@pytest.mark.parametrize("locale", LOCALES)
def test_a_suicide_threat_to_stop_leaving_gets_both_lines_and_no_duty_to_stay(locale):
    res = resources_for(locale)
    reply = safety_reply("crisis", locale,
                         flags=("crisis", "other_at_risk", "leaving_threat"))
    assert res.crisis[0].contact in reply.text
    for r in res.abuse:
        assert r.contact in reply.text
    low = reply.text.lower()
    assert "not to blame" in low and "controlling" in low
    assert not re.search(r"(your job|your duty|you (should|must|need to|have to)) (to )?stay",
                         low)
    assert {r.name for r in reply.resources} >= {r.name for r in res.abuse}


@pytest.mark.parametrize(("locale", "line"), [
    ("US", "1-800-799-7233"), ("UK", "0808 802 4040"), ("IE", "findahelpline.com"),
    ("AU", "findahelpline.com"), ("XX", "findahelpline.com"),
])
def test_the_person_who_harms_gets_no_shaming_a_step_away_and_the_line_to_stop(locale, line):
    res = resources_for(locale)
    for route in ("crisis", "abuse"):
        reply = safety_reply(route, locale, flags=(route, "harm_doer"))
        low = reply.text.lower()
        assert line in reply.text
        assert "step away" in low and "help exists for people who want to stop" in low
        assert f"call {res.emergency_number}" in low
        for word in SHAMING + ARTICLE_TIPS:
            assert word not in low, word
        assert any(line in r.contact for r in reply.resources)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_message_not_in_english_gets_an_honest_reply_with_crisis_lines(locale):
    res = resources_for(locale)
    reply = safety_reply("off_topic", locale, flags=("not_english",))
    low = reply.text.lower()
    assert "only read and answer messages in english" in low
    assert res.crisis[0].contact in reply.text and "findahelpline.com" in reply.text
    assert any("findahelpline" in r.contact for r in reply.resources)
    # a crisis message in another language keeps the crisis reply, with the note first
    crisis = safety_reply("crisis", locale, flags=("crisis", "not_english"))
    assert crisis.text.startswith("I can only read English well")
    assert "are you safe right now?" in crisis.text.lower()


def test_a_short_followup_after_a_crisis_turn_gets_the_short_safety_reply():
    full = safety_reply("crisis", "US")
    short = safety_reply("crisis", "US", sticky="crisis", flags=("safety_followup",))
    assert "still here" in short.text.lower() and "988" in short.text
    assert "are you safe right now?" in short.text.lower()
    assert len(short.text) < len(full.text) / 2
    assert short.resources == full.resources


# ---------------------------------------------------------------- the turn policy


def test_policy_for_safety_routes_is_a_safety_reply_with_its_banner():
    crisis = turn_policy("crisis", None, "US")
    assert crisis.safety_reply and crisis.banner == "crisis" and not crisis.llm_allowed
    assert crisis.sticky == "crisis" and crisis.case == "crisis"
    off = turn_policy("off_topic", None, "US")
    assert off.safety_reply and off.banner is None and off.resources == []
    other = turn_policy("crisis", None, "US", ("crisis", "other_at_risk"))
    assert other.case == "other_at_risk" and other.resources[0].contact == "911"
    foreign = turn_policy("advice", None, "UK", ("not_english",))
    assert foreign.safety_reply and foreign.case == "not_english"
    assert any("116 123" in r.contact for r in foreign.resources)


def test_policy_after_an_abuse_turn_holds_tips_back_and_keeps_the_line():
    p = turn_policy("advice", "abuse", "US")
    assert not p.safety_reply and not p.llm_allowed
    assert p.allowed_sections == frozenset({"tip-5"})
    assert "holding back the article's tips" in p.opening
    assert "1-800-799-7233" in p.closing
    assert any("1-800-799-7233" in r.contact for r in p.resources)
    therapy = turn_policy("therapy", "abuse", "US")
    assert "Couples counselling isn't recommended" in therapy.opening
    assert therapy.respond_as == "advice"
    assert not any("AAMFT" in r.name for r in therapy.resources)


def test_policy_after_a_crisis_turn_keeps_the_crisis_line_attached():
    p = turn_policy("advice", "crisis", "UK")
    assert not p.safety_reply and p.allowed_sections is None and p.llm_allowed
    assert p.sticky == "crisis" and "116 123" in p.closing
    assert any("116 123" in r.contact for r in p.resources)


def test_policy_for_a_fresh_conversation_adds_nothing_but_therapy_directories():
    advice = turn_policy("advice", None, "US")
    assert (advice.opening, advice.closing, advice.resources) == ("", "", [])
    assert advice.sticky is None and advice.llm_allowed
    therapy = turn_policy("therapy", None, "US")
    assert therapy.resources[0].name.startswith("AAMFT")


def test_most_severe_prefers_crisis_over_abuse_over_nothing():
    assert most_severe(None, "abuse", "crisis", "advice") == "crisis"
    assert most_severe("advice", None) is None
    assert most_severe("abuse", "therapy") == "abuse"
