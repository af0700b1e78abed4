"""Help lines as the page shows them: one link per channel, in the country chosen now.

A contact such as "call 1-800-799-7233, text START to 88788, or chat at thehotline.org" is
one entry in assistant/data/resources.json; on a phone each way to reach the line must be
its own tap, so the entry is split here into call (tel:), text (sms: with the body) and
chat/website (https:) links. Earlier replies are re-told in the country chosen now, so two
countries' numbers never show at once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.resources import LocaleResources, Resource, resources_for

__all__ = [
    "Channel",
    "banner_contacts",
    "channels",
    "help_contacts",
    "relocalize_resources",
    "relocalize_text",
]

_NUMBER = r"\+?\d(?:[\d -]*\d)?"
_TEXT_WORD = re.compile(rf"\btext ([A-Z][A-Z0-9]+) to ({_NUMBER})")
_CALL_OR_TEXT = re.compile(rf"\bcall or text ({_NUMBER})")
_TEXT = re.compile(rf"\btext ({_NUMBER})")
_CALL = re.compile(rf"\bcall ({_NUMBER}(?:\s+or\s+{_NUMBER})*)")
_BARE = re.compile(rf"^({_NUMBER}(?:\s+or\s+{_NUMBER})*)$")
_CHAT = re.compile(r"\bchat at ([a-z0-9.-]+\.[a-z]{2,})", re.IGNORECASE)
_ORDER = ("tel", "sms", "https", "http")
_GROUPS = ("crisis", "crisis_text", "abuse", "emergency", "therapy")


@dataclass(frozen=True)
class Channel:
    """One way to reach a line: what the link says and where it goes."""

    label: str
    href: str


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _tel(number: str, res: Resource) -> str:
    # The data file's href carries the dialling form (e.g. +1...); prefer it when it matches.
    own = res.href or ""
    if own.startswith("tel:") and _digits(own).endswith(_digits(number)):
        return own
    return "tel:" + _digits(number)


def _phone_channels(contact: str, res: Resource) -> list[Channel]:
    out: list[Channel] = []
    rest = contact
    for word, number in _TEXT_WORD.findall(rest):
        out.append(Channel(f"Text {word} to {number}", f"sms:{_digits(number)}?body={word}"))
    rest = _TEXT_WORD.sub("", rest)
    for number in _CALL_OR_TEXT.findall(rest):
        out.append(Channel(f"Call {number}", _tel(number, res)))
        out.append(Channel(f"Text {number}", f"sms:{_digits(number)}"))
    rest = _CALL_OR_TEXT.sub("", rest)
    for number in _TEXT.findall(rest):
        out.append(Channel(f"Text {number}", f"sms:{_digits(number)}"))
    calls = _CALL.findall(rest) or _BARE.findall(contact.strip())
    for group in calls:
        for number in re.split(r"\s+or\s+", group):
            out.append(Channel(f"Call {number}", _tel(number, res)))
    return out


def channels(res: Resource) -> list[Channel]:
    """Every way to reach `res`, each its own link; empty when there is nothing to tap."""
    out = _phone_channels(res.contact, res) if res.kind in ("call", "text") else []
    for domain in _CHAT.findall(res.contact):
        out.append(Channel(f"Chat at {domain}", f"https://{domain.lower()}/"))
    if res.href and res.href not in {c.href for c in out}:
        if res.href.startswith("http"):
            out.append(Channel(f"Website: {_domain(res.href)}", res.href))
        elif not out:
            out.append(Channel(res.contact, res.href))
    # Call first, then text, then the websites: the order people reach for them in.
    return sorted(dict.fromkeys(out), key=lambda c: _ORDER.index(c.href.split(":")[0]))


def _domain(url: str) -> str:
    host = re.sub(r"^https?://", "", url).split("/")[0]
    return host.removeprefix("www.")


def help_contacts(locale: str, route: str) -> list[Resource]:
    """The contacts a banner shows for a route, in the country chosen now."""
    res = resources_for(locale)
    if route == "abuse":
        return [*res.abuse, *res.emergency]
    return [*res.crisis, *res.crisis_text, *res.emergency]


def _group_of(res: Resource, table: LocaleResources) -> str | None:
    for group in _GROUPS:
        if any((r.name, r.contact) == (res.name, res.contact) for r in getattr(table, group)):
            return group
    return None


def relocalize_resources(resources: Iterable[Any], old: str, new: str) -> list[Any]:
    """The same kinds of contact as `resources` (given for `old`), for the locale `new`."""
    old_table, new_table = resources_for(old), resources_for(new)
    out: list[Any] = []
    groups: list[str] = []
    for res in resources:
        group = _group_of(res, old_table) if isinstance(res, Resource) else None
        if group is None:
            out.append(res)  # not locale-bound: kept as it is
        elif group not in groups:
            groups.append(group)
            out.extend(getattr(new_table, group))
    return list(dict.fromkeys(out))


def banner_contacts(route: str, resources: Sequence[Any], old: str, new: str) -> list[Any]:
    """A safety reply's banner contacts in the country chosen now."""
    moved = [r for r in relocalize_resources(resources, old, new) if isinstance(r, Resource)]
    return moved or help_contacts(new, route)


def _flag_sets() -> list[tuple[str, ...]]:
    """Every combination of triage flags that changes a safety reply's wording."""
    from assistant import safety

    cases = (None, "safety_followup", "not_english", *safety.CASES)
    return [
        tuple(f for f in (also, case) if f) for also in (None, "crisis", "abuse") for case in cases
    ]


@functools.cache
def _variants(route: str, locale: str) -> tuple[tuple[str, str], ...]:
    """(text, key) pairs of every locale-bound passage a reply for `route` can contain."""
    from assistant import safety

    out: list[tuple[str, str]] = []
    if route in safety.SAFETY_ROUTES:
        for sticky in (None, "crisis", "abuse"):
            for flags in _flag_sets():
                try:
                    text = safety.safety_reply(route, locale, sticky=sticky, flags=flags).text
                except (TypeError, ValueError, KeyError):
                    continue
                out.append((text, f"{route}/{sticky}/{','.join(flags)}"))
    for sticky in ("crisis", "abuse"):
        out.append((safety.sticky_note(sticky, locale), f"sticky/{sticky}"))
    out.append((safety.therapy_note(locale), "therapy"))
    return tuple(out)


def relocalize_text(text: str, route: str, old: str, new: str) -> str | None:
    """`text` with its help lines re-told for `new`; None when it can't be done exactly."""
    if resources_for(old).locale == resources_for(new).locale:
        return text
    fresh = dict((key, t) for t, key in _variants(route, new))
    out = text
    # Longest first: a whole safety reply contains the shorter notes.
    for passage, key in sorted(_variants(route, old), key=lambda p: -len(p[0])):
        if passage and passage in out and key in fresh:
            out = out.replace(passage, fresh[key])
    return None if _names_old_lines(out, old, new) else out


def _names_old_lines(text: str, old: str, new: str) -> bool:
    """Whether `text` still quotes a contact of `old` that `new` does not have."""
    new_table = resources_for(new)
    current = {r.contact for g in _GROUPS for r in getattr(new_table, g)}
    old_table = resources_for(old)
    stale = {r.contact for g in _GROUPS for r in getattr(old_table, g)} - current
    return any(c in text for c in stale)
