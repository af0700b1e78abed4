"""`assistant triage`: route one message, or a batch of JSON lines on stdin."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from ..config import get_settings
from ..errors import ModelError, QueryError, ReconnectError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "triage",
        help="show the safety route of a message (crisis, abuse, therapy, advice, off_topic)",
        description="Route a message the way every turn is routed before an answer, and show "
        "the confidence and the signals that decided it. With --jsonl, read JSON lines "
        '{"id": ..., "text": ..., "history": [earlier user messages]} on stdin and write '
        '{"id": ..., "route": ..., "confidence": ..., "reasons": [...]} for each.',
    )
    p.add_argument("message", nargs="?", help="the message to route")
    p.add_argument("--history", action="append", default=[], metavar="TEXT",
                   help="an earlier user message (repeat, oldest first)")
    p.add_argument("--jsonl", action="store_true", help="batch: JSON lines on stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--locale", default=None,
                   help="show the resources of this locale for crisis/abuse (default: settings)")
    p.add_argument("--rules-only", action="store_true",
                   help="skip the embedding model: the rules layer alone (faster start)")
    p.set_defaults(func=cmd_triage)


def _build(rules_only: bool) -> Any:
    from ..triage import load_triage

    settings = get_settings()
    embedder = None
    if not rules_only:
        try:
            from ..index import load_embedder
            from .index_cmds import _quiet_model_logs

            _quiet_model_logs()
            embedder = load_embedder(settings)
        except (ModelError, ReconnectError) as exc:
            print(f"note: rules only ({exc})", file=sys.stderr)
    return settings, load_triage(settings, embedder=embedder)


def _resources(route: str, locale: str) -> list[dict[str, str]]:
    from ..safety import sticky_resources

    return [{"name": r.name, "contact": r.contact} for r in sticky_resources(route, locale)]


def cmd_triage(args: argparse.Namespace, stdin: TextIO | None = None,
               out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.jsonl:
        if args.message:
            raise QueryError("give either a MESSAGE or --jsonl, not both")
        settings, triage = _build(args.rules_only)
        return run_jsonl(triage, stdin or sys.stdin, out, locale=args.locale)
    if not args.message:
        raise QueryError('give a message to route, e.g. assistant triage "we never talk anymore"')
    from ..text import clean_user_text

    text, _ = clean_user_text(args.message, 0)
    settings, triage = _build(args.rules_only)
    result = triage.classify(text, args.history or None)
    locale = args.locale or settings.locale
    if args.json:
        payload = result.to_dict()
        if result.sticky_route:
            payload["resources"] = _resources(result.sticky_route, locale)
        print(json.dumps(payload, ensure_ascii=False), file=out)
        return 0
    print(f"route:      {result.route}", file=out)
    print(f"confidence: {result.confidence:.2f}", file=out)
    print("reasons:    " + ("; ".join(result.reasons) or "none"), file=out)
    if result.sticky_route:
        print(f"resources ({locale}):", file=out)
        for r in _resources(result.sticky_route, locale):
            print(f"  - {r['name']}: {r['contact']}", file=out)
    return 0


def _error(line_id: Any, message: str) -> dict[str, Any]:
    return {"id": line_id, "error": message}


def triage_line(triage: Any, line: str, locale: str | None = None) -> dict[str, Any]:
    """Route one JSON line; a malformed line gives an error object, never an exception."""
    from ..text import clean_user_text

    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return _error(None, f"not JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(row, dict):
        return _error(None, "each line must be a JSON object with 'id' and 'text'")
    line_id = row.get("id")
    text = row.get("text")
    if not isinstance(text, str):
        return _error(line_id, "'text' must be a string")
    history = row.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        return _error(line_id, "'history' must be a list of strings (earlier user messages)")
    try:
        text, _ = clean_user_text(text, 0)
    except QueryError as exc:
        return _error(line_id, str(exc))
    result = triage.classify(text, history)
    payload = {"id": line_id, **{k: v for k, v in result.to_dict().items()
                                 if k in ("route", "confidence", "reasons")}}
    if locale and result.sticky_route:
        payload["resources"] = _resources(result.sticky_route, locale)
    return payload


def run_jsonl(triage: Any, stdin: TextIO, out: TextIO, *, locale: str | None = None) -> int:
    """Read JSON lines, write one JSON line per non-blank input line, in order."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            payload = triage_line(triage, line, locale)
        except Exception as exc:  # noqa: BLE001 - one bad line must not stop the batch
            payload = _error(None, f"could not route this line ({type(exc).__name__})")
        out.write(json.dumps(payload, ensure_ascii=False) + "\n")
        out.flush()
    return 0


__all__ = ["cmd_triage", "register", "run_jsonl", "triage_line"]
