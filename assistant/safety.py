"""Safety policy, in one place: which turns get a safety reply, what stays attached, the wording.

`turn_policy()` is what the answering step asks for every turn: whether the reply is a
safety reply, which article sections remain after an abuse disclosure, the opening and
closing paragraphs, the resources to attach and whether the LLM may write the reply.
`safety_reply()` builds the safety reply itself, choosing the case from the triage's
flags (someone else in danger, a suicide threat used to stop someone leaving, the person
who harms, a message not in English).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .data import read_toml
from .resources import LocaleResources, Resource, resources_for

# Routes answered by a safety reply instead of the article (no tips).
SAFETY_ROUTES = ("crisis", "abuse", "off_topic")
# Routes whose resources stay in view for the rest of the conversation, crisis first.
STICKY_ROUTES = ("crisis", "abuse")
# Cases of a safety reply beyond its route, by priority (TriageResult.flags).
CASES = ("leaving_threat", "other_at_risk", "harm_doer")


@dataclass(frozen=True)
class SafetyReply:
    """A complete reply for a safety route: Markdown text and the resources it names."""

    text: str
    resources: list[Resource] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "resources": [r.to_dict() for r in self.resources]}


@dataclass(frozen=True)
class TurnPolicy:
    """What one turn may say and must carry, decided from the route and the conversation."""

    safety_reply: bool  # answer with safety_reply(), never with article tips
    sticky: str | None  # crisis or abuse once either was seen: its lines stay attached
    allowed_sections: frozenset[str] | None  # article sections the reply may quote (None: all)
    opening: str  # a paragraph before the answer (after abuse: why tips are held back)
    closing: str  # a paragraph after it (the lines that stay in view)
    resources: list[Resource]  # attached to the reply
    llm_allowed: bool  # the LLM may write this reply
    respond_as: str = "advice"  # the route the answering step composes for
    banner: str | None = None  # the prominent help banner shown on this reply
    case: str = ""  # which safety reply: the route, or one of CASES, or followup/not_english


def most_severe(*routes: str | None) -> str | None:
    """The sticky route among several: crisis over abuse over nothing."""
    found = [r for r in routes if r in STICKY_ROUTES]
    return min(found, key=STICKY_ROUTES.index) if found else None


def turn_policy(route: str, sticky_before: str | None, locale: str | None,
                flags: Iterable[str] = ()) -> TurnPolicy:
    """The policy for one turn; `sticky_before` is the conversation's earlier safety route."""
    flags = tuple(flags)
    sticky = most_severe(sticky_before, route)
    if route in SAFETY_ROUTES or "not_english" in flags:
        sr = safety_reply(route if route in SAFETY_ROUTES else "off_topic", locale,
                          sticky=sticky_before, flags=flags)
        return TurnPolicy(True, sticky, frozenset(), "", "", sr.resources, False, route,
                          route if route in STICKY_ROUTES else None,
                          reply_case(route, flags))
    closing = sticky_note(sticky_before, locale)
    resources = sticky_resources(sticky_before, locale)
    if sticky_before == "abuse":
        words = _wording()["after_abuse"]
        opening = words["opening"]
        if route == "therapy":  # couples therapy is not advised where there is abuse
            opening += "\n\n" + words["therapy"]
        return TurnPolicy(False, sticky, frozenset(words["sections"]), opening, closing,
                          resources, False, "advice", None, route)
    if route == "therapy":
        resources = [*therapy_resources(locale), *resources]
    return TurnPolicy(False, sticky, None, "", closing, resources, True, route, None, route)


def reply_case(route: str, flags: Iterable[str]) -> str:
    """Which safety reply a turn gets: a special case from the flags, or the route's own."""
    flags = set(flags)
    if route not in STICKY_ROUTES:
        return "not_english" if "not_english" in flags else route
    for case in CASES:
        if case in flags:
            return case
    return "followup" if "safety_followup" in flags else route


@cache
def _wording() -> dict[str, Any]:
    return read_toml("safety_replies.toml")


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
        harm_doer_lines=_lines(res.harm_doer),
        emergency=res.emergency_number,
        directories=_lines(res.therapy),
        crisis_short=_short(res.crisis),
        abuse_short=_short(res.abuse),
    ).strip()


def _crisis_resources(res: LocaleResources) -> list[Resource]:
    return [*res.crisis, *res.crisis_text, *res.emergency]


def _abuse_resources(res: LocaleResources) -> list[Resource]:
    return [*res.emergency, *res.abuse]


def _case_reply(case: str, res: LocaleResources) -> SafetyReply:
    """The reply for a special case, with the resources its text names."""
    text = _fill(_wording()[case]["text"], res)
    if case == "other_at_risk":
        return SafetyReply(text, [*res.emergency, *res.crisis, *res.crisis_text])
    if case == "leaving_threat":
        return SafetyReply(text, [*res.emergency, *res.crisis, *res.crisis_text, *res.abuse])
    if case == "harm_doer":
        return SafetyReply(text, [*res.emergency, *res.harm_doer, *res.crisis,
                                  *res.crisis_text])
    # not_english: the triage could not read the message, so the crisis lines go with it
    helpline = resources_for("INTERNATIONAL").crisis
    return SafetyReply(text, [*res.crisis, *res.crisis_text, *helpline, *res.emergency])


def safety_reply(
    route: str,
    locale: str | None,
    *,
    sticky: str | None = None,
    flags: Iterable[str] = (),
) -> SafetyReply:
    """Build the reply for `route`; `sticky`/`flags` pick the case and add the other lines.

    `sticky` is the conversation's earlier safety route (TriageResult.sticky_route);
    `flags` are TriageResult.flags: the safety routes whose signals fired this turn (a
    crisis message that also describes abuse gets the domestic-violence line too) and
    the case of the message (other_at_risk, leaving_threat, harm_doer, not_english,
    safety_followup).
    """
    if route not in SAFETY_ROUTES:
        raise ValueError(f"no safety reply for route {route!r}")
    flags = tuple(flags)
    res = resources_for(locale)
    case = reply_case(route, flags)
    if case in (*CASES, "not_english"):
        reply = _case_reply(case, res)
        if case == "not_english" or route == "off_topic":
            return SafetyReply(reply.text, _dedupe(reply.resources))
        return _with_note(reply, flags)
    words = _wording()
    extra = ({sticky} | set(flags)) - {route, None}
    section = words[route]
    parts: list[str] = [_fill(section["followup" if case == "followup" else "text"], res)]
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
        for kind in STICKY_ROUTES:
            if kind in extra:
                parts.append(sticky_note(kind, locale))
                resources += sticky_resources(kind, locale)
    return _with_note(SafetyReply("\n\n".join(parts), _dedupe(resources)), flags)


def _with_note(reply: SafetyReply, flags: tuple[str, ...]) -> SafetyReply:
    """Put the English-only note before a crisis or abuse reply to a message not in English."""
    if "not_english" not in flags:
        return reply
    note = _wording()["not_english"]["note"]
    helpline = resources_for("INTERNATIONAL").crisis
    return SafetyReply(f"{note}\n\n{reply.text}", _dedupe([*reply.resources, *helpline]))


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
    if sticky not in STICKY_ROUTES:
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
    "CASES",
    "SAFETY_ROUTES",
    "STICKY_ROUTES",
    "SafetyReply",
    "TurnPolicy",
    "most_severe",
    "reply_case",
    "safety_reply",
    "sticky_note",
    "sticky_resources",
    "therapy_note",
    "therapy_resources",
    "turn_policy",
]
