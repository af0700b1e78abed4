"""`assistant ask` and `assistant chat`: thin layers over Assistant."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from ..config import get_settings
from ..errors import QueryError

CHAT_HELP = """Commands: /sources  the passages behind the last reply
          /reset    start a new conversation (forgets this one)
          /quit     leave (or Ctrl-D)
Nothing you type is saved."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ask",
        help="answer one question from the article",
        description="Triage the question, retrieve passages and answer with citations. Offline "
        "by default; with OPENAI_API_KEY or OPENAI_BASE_URL set, an LLM writes the answer and "
        "the offline reply stands in if it fails.",
    )
    p.add_argument("question", help="what's on your mind, in your own words")
    p.add_argument("--json", action="store_true", help="print one JSON object (text, route, "
                   "mode, act, citations, resources, notice, timings)")
    _common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "chat",
        help="talk it through, turn by turn",
        description="An interactive conversation; follow-ups use the earlier turns, which are "
        "kept in memory only. " + CHAT_HELP.replace("\n", " "),
    )
    p.add_argument("--jsonl", action="store_true",
                   help='read conversations as JSON lines {"id", "turns": [...], "locale"} on '
                   'stdin; write {"id", "replies": [...]} per conversation')
    _common(p)
    p.set_defaults(func=cmd_chat)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--locale", default=None, metavar="CC",
                   help="country for helplines: US, UK, IE, CA, AU, NZ, IN (default: settings)")
    p.add_argument("--offline", action="store_true",
                   help="never call an LLM, even when one is configured")


def build_assistant(args: argparse.Namespace) -> Any:
    """Build the Assistant from settings (quietly: model logs are not for the person)."""
    from ..assistant import Assistant
    from .index_cmds import _quiet_model_logs

    _quiet_model_logs()
    settings = get_settings()
    if getattr(args, "offline", False):
        settings = settings.model_copy(update={"openai_api_key": None, "openai_base_url": None})
    return Assistant.from_settings(settings)


def print_extras(reply: Any, out: TextIO, *, sources: bool = True,
                 shown: set[tuple[str, str]] | None = None) -> None:
    """After a reply: where it came from, new resources, and any notice."""
    if sources and reply.citations:
        seen = []
        for c in reply.citations:
            if c.section_id not in seen:
                seen.append(c.section_id)
        titles = {c.section_id: c.section_title for c in reply.citations}
        print("\nFrom the article: " + "; ".join(titles[s] for s in seen), file=out)
    fresh = [r for r in reply.resources if (r.name, r.contact) not in (shown or set())]
    if fresh:
        print("", file=out)
        for r in fresh:
            print(f"  • {r.name}: {r.contact}", file=out)
    notes = [n for n in (reply.notice, reply.verification) if n]
    for n in notes:
        print(f"\n({n})", file=out)


def render(text: str, out: TextIO) -> None:
    """Print Markdown as clean terminal text: styled on a terminal, plain when piped."""
    from rich.console import Console
    from rich.markdown import Markdown

    tty = out.isatty()
    console = Console(file=out, force_terminal=tty, no_color=not tty, highlight=False,
                      width=None if tty else 100)
    console.print(Markdown(text))


def stream_reply(assistant: Any, message: str, history: list[dict], locale: str | None,
                 out: TextIO) -> Any:
    """Print the reply once it is final, as clean text (no raw Markdown)."""
    from ..assistant import Final

    reply = None
    for event in assistant.stream(message, history, locale=locale):
        if isinstance(event, Final):
            reply = event.reply
    if reply is not None:
        render(reply.text, out)
    return reply


def reply_dict(reply: Any) -> dict[str, Any]:
    """One reply in the `chat --jsonl` shape (DESIGN.md)."""
    d = reply.to_dict()
    return {k: d[k] for k in ("text", "route", "mode", "act", "citations", "resources")}


def run_conversation(assistant: Any, turns: list[str], locale: str | None) -> list[dict]:
    """Answer each turn with the history before it, as the page and `chat` do."""
    history: list[dict] = []
    replies = []
    for message in turns:
        reply = assistant.respond(message, history, locale=locale)
        replies.append(reply_dict(reply))
        history += [
            {"role": "user", "content": message},
            {"role": "assistant", "content": reply.text, "route": reply.route},
        ]
    return replies


def _conversation(line: str) -> tuple[Any, list[str], str | None]:
    """Parse one input line: (id, turns, locale); QueryError when it is not one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QueryError(f"not JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        raise QueryError("each line must be a JSON object")
    turns = row.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise QueryError('"turns" must be a non-empty list of messages')
    locale = row.get("locale")
    return row.get("id"), turns, locale if isinstance(locale, str) else None


def _row_id(line: str) -> Any:
    """The id of an input line that could not be answered, when it has one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row.get("id") if isinstance(row, dict) else None


def cmd_chat_jsonl(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    """Conversations in, one line of replies per conversation out; bad lines get an error."""
    assistant = build_assistant(args)
    failed = 0
    for n, line in enumerate(stdin, 1):
        if not line.strip():
            continue
        try:
            cid, turns, locale = _conversation(line)
            result = {"id": cid, "replies": run_conversation(assistant, turns,
                                                             locale or args.locale)}
        except QueryError as exc:
            failed += 1
            result = {"id": _row_id(line), "line": n, "error": str(exc)}
        print(json.dumps(result, ensure_ascii=False), file=out, flush=True)
    return 1 if failed else 0


def cmd_ask(args: argparse.Namespace) -> int:
    assistant = build_assistant(args)
    if args.json:
        reply = assistant.respond(args.question, None, locale=args.locale)
        print(json.dumps(reply.to_dict(), ensure_ascii=False, indent=2))
        return 0
    reply = stream_reply(assistant, args.question, [], args.locale, sys.stdout)
    print_extras(reply, sys.stdout)
    return 0


def cmd_chat(args: argparse.Namespace, stdin: TextIO | None = None,
             out: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    if getattr(args, "jsonl", False):
        return cmd_chat_jsonl(args, stdin, out)
    interactive = stdin.isatty()
    assistant = build_assistant(args)
    mode = "with a language model" if assistant.llm is not None else "offline"
    print(f"Reconnect ({mode}). Tell me what's going on between you and your partner.",
          file=out)
    print(CHAT_HELP, file=out)
    history: list[dict] = []
    shown: set[tuple[str, str]] = set()  # resources already listed in this conversation
    last = None
    while True:
        if interactive:
            out.write("\nyou> ")
            out.flush()
        line = stdin.readline()
        if not line:  # Ctrl-D or end of piped input
            print("", file=out)
            return 0
        message = line.strip()
        if not message:
            continue
        command = message.lower()
        if command in ("/quit", "/exit", "/q"):
            return 0
        if command in ("/help", "/?"):
            print(CHAT_HELP, file=out)
            continue
        if command == "/reset":
            history, last, shown = [], None, set()
            print("(Started over: the earlier conversation is forgotten.)", file=out)
            continue
        if command == "/sources":
            _print_sources(last, out)
            continue
        if message.startswith("/"):
            print(f"Unknown command {message.split()[0]}. {CHAT_HELP}", file=out)
            continue
        out.write("\nreconnect> ")
        try:
            reply = stream_reply(assistant, message, history, args.locale, out)
        except QueryError as exc:
            print(f"error: {exc}", file=out)
            continue
        # Safety lines are listed every time; other resources once per conversation.
        keep = reply.route in ("crisis", "abuse")
        print_extras(reply, out, sources=False, shown=None if keep else shown)
        shown |= {(r.name, r.contact) for r in reply.resources}
        last = reply
        history += [
            {"role": "user", "content": message},
            {"role": "assistant", "content": reply.text, "route": reply.route},
        ]


def _print_sources(reply: Any, out: TextIO) -> None:
    if reply is None or not reply.citations:
        print("(No passages behind the last reply.)", file=out)
        return
    for c in reply.citations:
        print(f"\n{c.section_title} [{c.section_id}]\n  \"{c.quote}\"", file=out)


__all__ = [
    "build_assistant",
    "cmd_ask",
    "cmd_chat",
    "cmd_chat_jsonl",
    "print_extras",
    "register",
    "render",
    "reply_dict",
    "run_conversation",
    "stream_reply",
]
