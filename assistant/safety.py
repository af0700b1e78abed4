"""Replies for the safety routes (crisis, abuse, off_topic) and the therapy note, by locale."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as _pkg

from .resources import LocaleResources, Resource, resources_for

SAFETY_ROUTES = ("crisis", "abuse", "off_topic")


@dataclass(frozen=True)
class SafetyReply:
    """A complete reply for a safety route: Markdown text and the resources it names."""

    text: str
    resources: list[Resource] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "resources": [r.to_dict() for r in self.resources]}


@cache
def _wording() -> dict:
    raw = _pkg.files("assistant.data").joinpath("safety_replies.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def _lines(items: Iterable[Resource]) -> str:
    template = _wording()["line"]
    return "\n".join(template.format(name=r.name, contact=r.contact) for r in items)


def _short(items: list[Resource]) -> str:
    if not items:
        return ""
    first = items[0]
    return f"**{first.contact}** ({first.name})"


def _fill(template: str, res: LocaleResources) -> str:
    return template.format(
        crisis_lines=_lines([*res.crisis, *res.crisis_text]),
        abuse_lines=_lines(res.abuse),
        emergency=res.emergency_number,
        directories=_lines(res.therapy),
        crisis_short=_short(res.crisis),
        abuse_short=_short(res.abuse),
    ).strip()


def _crisis_resources(res: LocaleResources) -> list[Resource]:
    return [*res.crisis, *res.crisis_text, *res.emergency]


def _abuse_resources(res: LocaleResources) -> list[Resource]:
    return [*res.emergency, *res.abuse]


def safety_reply(
    route: str,
    locale: str | None,
    *,
    sticky: str | None = None,
    flags: Iterable[str] = (),
) -> SafetyReply:
    """Build the reply for `route`; `sticky`/`flags` add the other safety route's lines.

    `sticky` is the conversation's earlier safety route (TriageResult.sticky_route);
    `flags` are the safety routes whose signals fired this turn (TriageResult.flags),
    so a crisis message that also describes abuse gets the domestic-violence line too.
    """
    if route not in SAFETY_ROUTES:
        raise ValueError(f"no safety reply for route {route!r}")
    res = resources_for(locale)
    words = _wording()
    extra = ({sticky} | set(flags)) - {route, None}
    parts: list[str] = [_fill(words[route]["text"], res)]
    resources: list[Resource] = []
    if route == "crisis":
        resources += _crisis_resources(res)
        if "abuse" in extra:
            parts.append(_fill(words["crisis"]["with_abuse"], res))
            resources += res.abuse
    elif route == "abuse":
        resources += _abuse_resources(res)
        if "crisis" in extra:
            parts.append(_fill(words["abuse"]["with_crisis"], res))
            resources += [*res.crisis, *res.crisis_text]
    else:  # off_topic: keep an earlier conversation's lines in view
        for kind in ("crisis", "abuse"):
            if kind in extra:
                parts.append(sticky_note(kind, locale))
                resources += sticky_resources(kind, locale)
    return SafetyReply("\n\n".join(parts), _dedupe(resources))


def _dedupe(items: list[Resource]) -> list[Resource]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in items:
        if (r.name, r.contact) not in seen:
            seen.add((r.name, r.contact))
            out.append(r)
    return out


def sticky_note(sticky: str | None, locale: str | None) -> str:
    """One line to append to every later reply once a conversation was crisis or abuse."""
    if sticky not in ("crisis", "abuse"):
        return ""
    return _fill(_wording()["sticky"][sticky], resources_for(locale))


def sticky_resources(sticky: str | None, locale: str | None) -> list[Resource]:
    """The resources that stay attached after a crisis or abuse turn."""
    res = resources_for(locale)
    if sticky == "crisis":
        return _crisis_resources(res)
    if sticky == "abuse":
        return _abuse_resources(res)
    return []


def therapy_resources(locale: str | None) -> list[Resource]:
    """Directories for finding a couples therapist in this locale."""
    return list(resources_for(locale).therapy)


def therapy_note(locale: str | None) -> str:
    """A short Markdown note on how to find a couples therapist."""
    return _fill(_wording()["therapy"]["note"], resources_for(locale))


__all__ = [
    "SAFETY_ROUTES",
    "SafetyReply",
    "safety_reply",
    "sticky_note",
    "sticky_resources",
    "therapy_note",
    "therapy_resources",
]
