"""`assistant feedback`: the tallies of thumbs up and down given in the chat page."""

from __future__ import annotations

import argparse
import json

from ..config import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "feedback",
        help="show the tallies of thumbs up/down given in the chat page",
        description="Count the ratings saved by the chat page, overall and by route, mode and "
        "cited section. The file holds no message text.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_feedback)


def _rate(counts: dict[str, int]) -> str:
    total = counts["up"] + counts["down"]
    share = f"{100 * counts['up'] / total:.0f}%" if total else "-"
    return f"{counts['up']:>5} {counts['down']:>5} {share:>6}"


def cmd_feedback(args: argparse.Namespace) -> int:
    from ..feedback import tallies

    settings = get_settings()
    t = tallies(settings.feedback_path)
    if args.json:
        print(json.dumps({"path": str(settings.feedback_path), **t.to_dict()}, indent=2))
        return 0
    if not t.total:
        print(f"No feedback yet ({settings.feedback_path}).")
        return 0
    print(f"Feedback in {settings.feedback_path}: {t.total} rating(s), {t.first} to {t.last}")
    print()
    header = f"{'':<18} {'up':>5} {'down':>5} {'up %':>6}"
    print(header)
    print(f"{'all':<18} {_rate({'up': t.up, 'down': t.down})}")
    for title, groups in (("route", t.by_route), ("mode", t.by_mode), ("section", t.by_section)):
        if not groups:
            continue
        print(f"by {title}")
        for name, counts in groups.items():
            print(f"  {name:<16} {_rate(counts)}")
    return 0


__all__ = ["cmd_feedback", "register"]
