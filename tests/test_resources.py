"""Resources by locale: every locale has a crisis line and an emergency number, with sources."""

from __future__ import annotations

import re

import pytest

from assistant.resources import INTERNATIONAL, known_locales, resources_for

LOCALES = known_locales()
NAMED = [k for k in LOCALES if k != INTERNATIONAL]


def test_the_safety_table_locales_are_all_there():
    assert set(NAMED) == {"US", "UK", "IE", "CA", "AU", "NZ", "IN"}
    assert LOCALES[-1] == INTERNATIONAL


@pytest.mark.parametrize("locale", LOCALES)
def test_every_locale_has_a_crisis_line_an_emergency_number_and_an_abuse_line(locale):
    res = resources_for(locale)
    assert res.crisis, locale
    assert res.emergency, locale
    assert res.abuse, locale
    assert res.therapy, locale
    if locale != INTERNATIONAL:
        assert re.search(r"\d[\d -]{2,}", res.crisis[0].contact), res.crisis[0]
        assert re.fullmatch(r"[\d ]+(?: or [\d ]+)?", res.emergency_number), res.emergency_number


@pytest.mark.parametrize("locale", LOCALES)
def test_every_entry_names_its_source_and_a_tappable_link(locale):
    res = resources_for(locale)
    for r in [*res.crisis, *res.crisis_text, *res.abuse, *res.emergency, *res.therapy]:
        assert r.source.strip(), r
        assert r.name.strip() and r.contact.strip(), r
        if r.href is not None:
            assert r.href.startswith(("tel:", "sms:", "https://")), r


@pytest.mark.parametrize(
    ("locale", "crisis", "emergency", "abuse"),
    [
        ("US", "988", "911", "1-800-799-7233"),
        ("UK", "116 123", "999", "0808 2000 247"),
        ("IE", "116 123", "112 or 999", "1800 341 900"),
        ("CA", "9-8-8", "911", "sheltersafe.ca"),
        ("AU", "13 11 14", "000", "1800 737 732"),
        ("NZ", "1737", "111", "0800 733 843"),
        ("IN", "14416", "112", "181"),
    ],
)
def test_numbers_match_the_safety_table(locale, crisis, emergency, abuse):
    res = resources_for(locale)
    assert crisis in res.crisis[0].contact
    assert res.emergency_number == emergency
    assert any(abuse in r.contact for r in res.abuse)


def test_us_has_crisis_text_line_and_young_peoples_line():
    res = resources_for("US")
    assert any("741741" in r.contact for r in res.crisis_text)
    assert any("loveisrespect" in r.name for r in res.abuse)
    assert res.crisis[0].href == "tel:988"


@pytest.mark.parametrize("raw", ["xx", "", None, "FR", "de-DE", "  "])
def test_unknown_locale_falls_back_to_the_international_entry(raw):
    res = resources_for(raw)
    assert res.locale == INTERNATIONAL
    assert "findahelpline.com" in res.crisis[0].contact
    assert res.emergency_number == "your local emergency number"


@pytest.mark.parametrize(("raw", "key"), [("gb", "UK"), ("en-GB", "UK"), ("en_US", "US"),
                                          ("ie", "IE"), ("en-AU", "AU"), (" nz ", "NZ")])
def test_locale_spellings_map_to_the_table(raw, key):
    assert resources_for(raw).locale == key


def test_therapy_directories_follow_the_safety_guidance():
    names = " ".join(r.name for r in resources_for("US").therapy)
    for expected in ("AAMFT", "Psychology Today", "Gottman", "ICEEFT", "Open Path", "Employee"):
        assert expected in names
    # US-only directories are not offered where they don't operate
    uk = " ".join(r.name for r in resources_for("UK").therapy)
    assert "Open Path" not in uk and "AAMFT" not in uk


@pytest.mark.parametrize("locale", LOCALES)
def test_every_locale_has_a_line_for_people_who_want_to_stop_hurting_someone(locale):
    res = resources_for(locale)
    assert res.harm_doer, locale
    for r in res.harm_doer:
        assert r.source.strip() and r.contact.strip()


@pytest.mark.parametrize(("locale", "line"), [("US", "1-800-799-7233"), ("UK", "0808 802 4040"),
                                              ("NZ", "findahelpline.com"),
                                              ("xx", "findahelpline.com")])
def test_harm_doer_lines_match_the_safety_guidance(locale, line):
    assert line in resources_for(locale).harm_doer[0].contact
