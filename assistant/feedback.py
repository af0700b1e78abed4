"""Thumbs up/down on answers in a local SQLite file: what an answer rested on, not its words.

A record holds the rating, the route, the mode, the cited section ids, the locale and a
timestamp. Every field is checked against a closed vocabulary before it is written, so a
caller cannot put message text into the file by mistake.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .errors import StoreError

RATINGS = ("up", "down")
ROUTES = ("crisis", "abuse", "therapy", "advice", "off_topic")
MODES = ("offline", "llm", "fallback")

# Identifiers only: section ids ("tip-4"), locales ("US"), record ids (hex). No spaces.
_SECTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})?$|^[A-Z]{2,16}$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id         TEXT PRIMARY KEY,
    rating     TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    route      TEXT NOT NULL,
    mode       TEXT NOT NULL,
    sections   TEXT NOT NULL,
    locale     TEXT,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class FeedbackRecord:
    """One rating: the answer's route, mode and cited section ids; no message text."""

    rating: str
    route: str
    mode: str
    sections: tuple[str, ...] = ()
    locale: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0).isoformat()
    )

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {self.rating!r}")
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, not {self.route!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        bad = [s for s in self.sections if not isinstance(s, str) or not _SECTION_ID.match(s)]
        if bad:
            raise ValueError(f"section ids must look like 'tip-4'; refused {len(bad)} value(s)")
        if self.locale is not None and not _LOCALE.match(self.locale):
            raise ValueError("locale must be a short code such as 'US' or 'en-GB'")
        if not _RECORD_ID.match(self.id):
            raise ValueError("id must be 8-64 letters, digits or dashes")


@dataclass(frozen=True)
class Tallies:
    """Counts of ratings, overall and by route, mode and cited section."""

    up: int = 0
    down: int = 0
    by_route: dict[str, dict[str, int]] = field(default_factory=dict)
    by_mode: dict[str, dict[str, int]] = field(default_factory=dict)
    by_section: dict[str, dict[str, int]] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None

    @property
    def total(self) -> int:
        return self.up + self.down

    def to_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "up": self.up,
            "down": self.down,
            "by_route": self.by_route,
            "by_mode": self.by_mode,
            "by_section": self.by_section,
            "first": self.first,
            "last": self.last,
        }


class FeedbackStore:
    """The feedback file; safe to share between threads (one connection per call)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self._ensure_schema()
            conn = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the feedback file {self.path}: {exc}") from exc
        try:
            with conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the feedback file {self.path}: {exc}") from exc
        finally:
            conn.close()

    def _ensure_schema(self) -> None:
        with self._lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10)
            try:
                # WAL lets many sessions write while a tally is being read.
                conn.execute("PRAGMA journal_mode=WAL")
                with conn:
                    conn.execute(_SCHEMA)
            finally:
                conn.close()
            self._ready = True

    def record(self, rec: FeedbackRecord) -> str:
        """Save a rating, replacing an earlier one with the same id; return the id."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO feedback "
                "(id, rating, route, mode, sections, locale, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.id,
                    rec.rating,
                    rec.route,
                    rec.mode,
                    ",".join(rec.sections),
                    rec.locale,
                    rec.created_at,
                ),
            )
        return rec.id

    def withdraw(self, record_id: str) -> bool:
        """Delete a rating the person took back; return whether one was there."""
        if not self.path.exists():
            return False
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM feedback WHERE id = ?", (record_id,))
            return cur.rowcount > 0

    def records(self) -> list[FeedbackRecord]:
        """Every stored rating, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, rating, route, mode, sections, locale, created_at "
                "FROM feedback ORDER BY created_at, id"
            ).fetchall()
        return [
            FeedbackRecord(
                id=r[0],
                rating=r[1],
                route=r[2],
                mode=r[3],
                sections=tuple(s for s in r[4].split(",") if s),
                locale=r[5],
                created_at=r[6],
            )
            for r in rows
        ]

    def tallies(self) -> Tallies:
        """Count the ratings, overall and by route, mode and cited section."""
        return _tally(self.records())


def _tally(records: Iterable[FeedbackRecord]) -> Tallies:
    overall: Counter[str] = Counter()
    by_route: dict[str, Counter[str]] = {}
    by_mode: dict[str, Counter[str]] = {}
    by_section: dict[str, Counter[str]] = {}
    stamps: list[str] = []
    for rec in records:
        overall[rec.rating] += 1
        by_route.setdefault(rec.route, Counter())[rec.rating] += 1
        by_mode.setdefault(rec.mode, Counter())[rec.rating] += 1
        for section in rec.sections:
            by_section.setdefault(section, Counter())[rec.rating] += 1
        stamps.append(rec.created_at)

    def plain(groups: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
        return {k: {r: groups[k][r] for r in RATINGS} for k in sorted(groups)}

    return Tallies(
        up=overall["up"],
        down=overall["down"],
        by_route=plain(by_route),
        by_mode=plain(by_mode),
        by_section=plain(by_section),
        first=min(stamps) if stamps else None,
        last=max(stamps) if stamps else None,
    )


def tallies(path: Path | str | None = None) -> Tallies:
    """Count the ratings in the feedback file (default: the one Settings names)."""
    if path is None:
        from .config import get_settings

        path = get_settings().feedback_path
    return FeedbackStore(path).tallies()


__all__ = ["MODES", "RATINGS", "ROUTES", "FeedbackRecord", "FeedbackStore", "Tallies", "tallies"]
