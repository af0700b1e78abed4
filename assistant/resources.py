"""Crisis, abuse, harm-doer and therapy resources by locale, from a data file with sources."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache

from .data import read_json

INTERNATIONAL = "INTERNATIONAL"


@dataclass(frozen=True)
class Resource:
    """One service a person can reach: a line, a text number, a website or a directory."""

    name: str
    contact: str
    kind: str  # call | text | web | info
    href: str | None  # tel:, sms: or https: link; None when there is nothing to tap
    source: str
    hours: str = ""

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class LocaleResources:
    """Everything the safety replies need for one locale."""

    locale: str
    label: str
    crisis: list[Resource] = field(default_factory=list)
    crisis_text: list[Resource] = field(default_factory=list)
    abuse: list[Resource] = field(default_factory=list)
    emergency: list[Resource] = field(default_factory=list)
    therapy: list[Resource] = field(default_factory=list)
    harm_doer: list[Resource] = field(default_factory=list)  # for people who want to stop

    @property
    def emergency_number(self) -> str:
        return self.emergency[0].contact if self.emergency else "your local emergency number"


@cache
def _data() -> dict:
    return read_json("resources.json")


def _resource(entry: dict) -> Resource:
    return Resource(
        name=entry["name"],
        contact=entry["contact"],
        kind=entry["kind"],
        href=entry.get("href"),
        source=entry["source"],
        hours=entry.get("hours", ""),
    )


def normalize_locale(locale: str | None) -> str:
    """Map 'gb', 'en-GB', 'en_US' and the like to a key of the data file."""
    data = _data()
    key = (locale or "").strip().upper().replace("_", "-")
    key = data["aliases"].get(key, key)
    if key not in data["locales"] and "-" in key:
        region = key.rsplit("-", 1)[1]
        key = data["aliases"].get(region, region)
    return key if key in data["locales"] else INTERNATIONAL


def known_locales() -> list[str]:
    """Locale keys in the data file, the international fallback last."""
    keys = [k for k in _data()["locales"] if k != INTERNATIONAL]
    return [*keys, INTERNATIONAL]


@cache
def resources_for(locale: str | None) -> LocaleResources:
    """Resources for a locale; an unknown one gets the international entry."""
    key = normalize_locale(locale)
    data = _data()
    entry = data["locales"][key]
    directories = data["directories"]
    return LocaleResources(
        locale=key,
        label=entry["label"],
        crisis=[_resource(e) for e in entry["crisis"]],
        crisis_text=[_resource(e) for e in entry["crisis_text"]],
        abuse=[_resource(e) for e in entry["abuse"]],
        emergency=[_resource(e) for e in entry["emergency"]],
        therapy=[_resource(directories[name]) for name in entry["therapy"]],
        harm_doer=[_resource(e) for e in entry["harm_doer"]],
    )


__all__ = [
    "INTERNATIONAL",
    "LocaleResources",
    "Resource",
    "known_locales",
    "normalize_locale",
    "resources_for",
]
