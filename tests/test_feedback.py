"""The feedback store keeps ratings and what an answer rested on, and refuses anything else."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from assistant.cli import main as cli
from assistant.errors import StoreError
from assistant.feedback import FeedbackRecord, FeedbackStore, tallies


def test_record_round_trip_and_tallies(tmp_path):
    store = FeedbackStore(tmp_path / "fb" / "feedback.sqlite3")
    store.record(FeedbackRecord("up", "advice", "offline", ("tip-4", "tip-3"), "US"))
    store.record(FeedbackRecord("down", "advice", "llm", ("tip-4",), "UK"))
    store.record(FeedbackRecord("up", "crisis", "offline", (), "INTERNATIONAL"))

    recs = store.records()
    assert sorted((r.rating, r.route, r.mode, r.sections, r.locale) for r in recs) == [
        ("down", "advice", "llm", ("tip-4",), "UK"),
        ("up", "advice", "offline", ("tip-4", "tip-3"), "US"),
        ("up", "crisis", "offline", (), "INTERNATIONAL"),
    ]
    t = store.tallies()
    assert (t.total, t.up, t.down) == (3, 2, 1)
    assert t.by_route == {"advice": {"up": 1, "down": 1}, "crisis": {"up": 1, "down": 0}}
    assert t.by_mode == {"llm": {"up": 0, "down": 1}, "offline": {"up": 2, "down": 0}}
    assert t.by_section == {"tip-3": {"up": 1, "down": 0}, "tip-4": {"up": 1, "down": 1}}
    assert t.first and t.last and t.first <= t.last
    assert tallies(store.path).to_dict() == t.to_dict()


def test_changing_and_withdrawing_a_rating_keeps_one_row(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    rid = store.record(FeedbackRecord("up", "therapy", "offline", ("tip-6",), id="a1b2c3d4e5"))
    store.record(FeedbackRecord("down", "therapy", "offline", ("tip-6",), id=rid))
    assert [(r.id, r.rating) for r in store.records()] == [(rid, "down")]
    assert store.withdraw(rid) is True
    assert store.withdraw(rid) is False
    assert store.tallies().total == 0


def test_no_file_is_an_empty_tally_and_creates_nothing(tmp_path):
    path = tmp_path / "never" / "feedback.sqlite3"
    assert tallies(path).total == 0
    assert FeedbackStore(path).withdraw("a1b2c3d4e5") is False
    assert not path.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rating": "meh"},
        {"route": "I want to leave him"},
        {"mode": "manual"},
        {"sections": ("we barely talk anymore",)},
        {"sections": ("tip-4", "Tip 4: be honest")},
        {"locale": "my partner reads my phone"},
        {"id": "not an id, a sentence"},
    ],
)
def test_free_text_is_refused_in_every_field(kwargs):
    base = {"rating": "up", "route": "advice", "mode": "offline", "sections": ("tip-4",)}
    with pytest.raises(ValueError):
        FeedbackRecord(**{**base, **kwargs})


def test_the_file_holds_only_the_closed_vocabulary(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path)
    store.record(FeedbackRecord("down", "abuse", "fallback", ("conclusion",), "NZ"))
    with sqlite3.connect(path) as conn:
        cols = [row[1] for row in conn.execute("PRAGMA table_info(feedback)")]
        rows = conn.execute("SELECT rating, route, mode, sections, locale FROM feedback").fetchall()
    assert cols == ["id", "rating", "route", "mode", "sections", "locale", "created_at"]
    assert rows == [("down", "abuse", "fallback", "conclusion", "NZ")]


def test_parallel_writers_all_land(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite3")

    def write(i):
        store.record(FeedbackRecord("up" if i % 3 else "down", "advice", "offline", ("tip-2",)))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t = store.tallies()
    assert (t.total, t.down) == (30, 10)


def test_unwritable_location_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="feedback"):
        FeedbackStore(blocker / "feedback.sqlite3").record(
            FeedbackRecord("up", "advice", "offline")
        )


def test_cli_prints_tallies(tmp_path, monkeypatch, capsys):
    path = tmp_path / "fb.sqlite3"
    monkeypatch.setenv("RECONNECT_FEEDBACK_DB", str(path))
    assert cli(["feedback"]) == 0
    assert "No feedback yet" in capsys.readouterr().out

    store = FeedbackStore(path)
    store.record(FeedbackRecord("up", "advice", "offline", ("tip-4",)))
    store.record(FeedbackRecord("down", "advice", "offline", ("tip-4",)))
    store.record(FeedbackRecord("up", "crisis", "offline"))
    assert cli(["feedback"]) == 0
    out = capsys.readouterr().out
    assert "3 rating(s)" in out
    assert any(line.split()[:4] == ["advice", "1", "1", "50%"] for line in out.splitlines())
    assert any(line.split()[:3] == ["tip-4", "1", "1"] for line in out.splitlines())

    assert cli(["feedback", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["total"], data["up"], data["down"]) == (3, 2, 1)
    assert data["by_route"]["crisis"] == {"up": 1, "down": 0}
    assert data["path"] == str(path)
