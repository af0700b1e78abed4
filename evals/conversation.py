"""Conversation quality: `python -m evals conversation [--set NAME] [--show]`.

Reads a set of single turns (`{"id", "text", "act", "history"?, "sections"?}`) and
scripted conversations (`{"id", "turns": [{"text", "act", "sections"?, "not_sections"?}],
"pronoun",
"themes"}`) from evals/data/NAME.jsonl (or NAME_turns.jsonl / NAME_conversations.jsonl,
or a path). Conversations run through the same path as `assistant chat --jsonl`.

Prints act accuracy per act and overall, and the mechanical checks: the right sections
for article questions, no echo of the person's words as a topic, no antecedent-less
"it", no repeated opener, closer or quote within a conversation, pronoun agreement,
safety replies unchanged, no section the person ruled out offered again (`not_sections`),
and no section label printed twice in one reply. `--show` prints every reply for a human to read.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from evals.common import DATA, quiet_model_logs, read_jsonl, table, write_results

TARGETS = {"act_accuracy": 0.95, "echo": 0, "antecedent": 0, "repetition": 0}
# Acts whose reply may repeat itself: the person asked for the same thing again.
ASKED_AGAIN = {"article_tip", "article_overview", "recap", "article_source", "privacy",
               "about_assistant", "memory", "greeting", "other_language", "safety",
               "off_topic"}
_QUOTED = re.compile(r"[\"“]([^\"“”]{3,}?)[\"”]")
_IT = re.compile(r"\bit (suggests|says|recommends|offers|advises)\b", re.I)
_WRONG = {"he": re.compile(r"\b(she|her|hers|them|their)\b", re.I),
          "she": re.compile(r"\b(he|him|his|them|their)\b", re.I)}
_TITLE = re.compile(r"\*\*[^*]+\*\*")
# The article's words are quoted in straight quotes (its own quotation marks are curly).
_ARTICLE_QUOTE = re.compile(r"\"[^\"\n]+\"")


# `--set dev` / `--set test`: the tuning split and the held-out split.
_ALIASES = {"dev": "conversation_dev", "test": "conversation_test"}


def load_set(name: str) -> tuple[list[dict], list[dict]]:
    """Single turns and conversations of a set (a name in evals/data, or a path)."""
    name = _ALIASES.get(name, name)
    paths = [Path(name)] if Path(name).exists() else [
        DATA / f"{name}{suffix}.jsonl" for suffix in ("", "_turns", "_conversations")]
    rows = [r for p in paths if p.exists() for r in read_jsonl(p)]
    if not rows:
        raise SystemExit(f"no data for set {name!r} (looked for {', '.join(map(str, paths))})")
    return [r for r in rows if "turns" not in r], [r for r in rows if "turns" in r]


def build(stub_triage: bool) -> Any:
    from assistant.assistant import Assistant
    from assistant.config import Settings

    settings = Settings(openai_base_url=None, openai_api_key=None)
    if not stub_triage:
        return Assistant.from_settings(settings)
    from assistant.retrieval import build_retriever

    return Assistant(settings, retriever=build_retriever(settings), triage=_AdviceTriage())


class _AdviceTriage:
    """Routes everything `advice`: for working on the responder while triage is broken."""

    def classify(self, message: str, history: Any = None, *, embedding: Any = None) -> Any:
        from assistant.triage import TriageResult

        return TriageResult("advice", 0.5, ["stub"], None, ())

    def rules_route(self, message: str) -> str:
        return "advice"


# ---------------------------------------------------------------- checks


def own_words(text: str) -> str:
    """The reply without quotes and tip titles: what the assistant wrote itself."""
    return _TITLE.sub(" ", _ARTICLE_QUOTE.sub(" ", text))


def echo(reply: str, message: str, corpus: str) -> list[str]:
    """Quoted spans of two words or more that come from the message, not the article."""
    words = set(re.findall(r"[a-z']+", message.lower()))
    out = []
    for m in _QUOTED.finditer(reply):
        span = m.group(1).strip()
        if span in corpus or len(span.split()) < 2:
            continue
        if len(set(re.findall(r"[a-z']+", span.lower())) & words) >= 2:
            out.append(span)
    return out


def antecedent(reply: str) -> bool:
    """True when 'it suggests' comes before the article is named."""
    m = _IT.search(reply)
    return bool(m) and "article" not in reply[: m.start()].lower()


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]


def closer(text: str) -> str:
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    return next((p for p in reversed(paras[-2:]) if p.endswith("?")), "")


def sections_ok(reply: Any, expected: list[str]) -> bool:
    cited = [c.section_id for c in reply.citations if c.section_id != "intro"]
    if not expected:
        return not cited or "doesn't" in reply.text
    return bool(cited) and cited[0] in expected


class Scorer:
    """Accumulates act accuracy and defects over turns and conversations."""

    def __init__(self, corpus: str, locale: str = "US") -> None:
        self.corpus = corpus
        self.locale = locale
        self.acts: dict[str, Counter] = defaultdict(Counter)
        self.defects: dict[str, list[str]] = defaultdict(list)
        self.misses: list[str] = []

    def turn(self, rid: str, row: dict, reply: Any, message: str) -> None:
        expected = row.get("act")
        if expected:
            ok = reply.act == expected
            self.acts[expected]["n"] += 1
            self.acts[expected]["ok"] += ok
            if not ok:
                self.misses.append(f"{rid}: {expected} -> {reply.act}: {message[:70]!r}")
        if "sections" in row and expected in ("article_tip", "article_topic") \
                and reply.act == expected and not sections_ok(reply, row["sections"]):
            self.defects["sections"].append(f"{rid}: {[c.section_id for c in reply.citations]}"
                                            f" not in {row['sections']}")
        # A section the person ruled out earlier ("he already has friends"): never offered.
        ruled = set(row.get("not_sections", ())) & {c.section_id for c in reply.citations}
        if ruled:
            self.defects["ruled_out"].append(f"{rid}: {sorted(ruled)}")
        labels = re.findall(r"\*\((tip \d+|introduction|conclusion)\)\*", reply.text)
        if len(labels) != len(set(labels)):  # "(tip 4)" twice in one reply
            self.defects["label_twice"].append(rid)
        for span in echo(reply.text, message, self.corpus):
            self.defects["echo"].append(f"{rid}: “{span}”")
        if antecedent(reply.text):
            self.defects["antecedent"].append(rid)
        if (reply.verification or "").startswith("repaired"):  # a quote not in the article
            self.defects["verbatim"].append(rid)
        self._safety(rid, reply)

    def _safety(self, rid: str, reply: Any) -> None:
        from assistant.safety import CASES, safety_reply

        if reply.route in ("crisis", "abuse") and reply.act == "safety":
            # the reply the safety module writes for this route, in any of its cases
            # (someone else at risk, a threat to stop leaving, harm-doer, a follow-up)
            cases = [(), *((c,) for c in CASES), ("safety_followup",)]
            openings = {safety_reply(reply.route, self.locale, flags=f).text.split("\n\n")[0]
                        for f in cases}
            if not any(reply.text.startswith(o) for o in openings):
                self.defects["safety_changed"].append(rid)

    def conversation(self, cid: str, conv: dict, replies: list[Any]) -> None:
        seen: dict[str, set[str]] = defaultdict(set)
        for n, reply in enumerate(replies):
            rid = f"{cid}.{n}"
            self._repeats(rid, reply, seen)
            pronoun = conv.get("pronoun")
            if pronoun in _WRONG and reply.act not in ("safety", "off_topic"):
                m = _WRONG[pronoun].search(own_words(reply.text))
                if m:
                    self.defects["pronoun"].append(f"{rid}: {m.group(0)!r}")

    def _repeats(self, rid: str, reply: Any, seen: dict[str, set[str]]) -> None:
        if reply.act in ASKED_AGAIN:
            return
        parts = {"opener": {first_sentence(reply.text)}, "closer": {closer(reply.text)},
                 "quote": {c.quote for c in reply.citations}}
        for kind, values in parts.items():
            for v in values - {""}:
                if v in seen[kind]:
                    self.defects["repetition"].append(f"{rid}: {kind} {v[:60]!r}")
                seen[kind].add(v)

    def summary(self) -> dict[str, Any]:
        n = sum(c["n"] for c in self.acts.values())
        ok = sum(c["ok"] for c in self.acts.values())
        return {
            "act_accuracy": round(ok / n, 4) if n else None, "turns": n,
            "per_act": {a: {"n": c["n"], "accuracy": round(c["ok"] / c["n"], 4)}
                        for a, c in sorted(self.acts.items())},
            "defects": {k: len(v) for k, v in self.defects.items()},
            "defect_list": dict(self.defects), "misses": self.misses,
        }


# ---------------------------------------------------------------- running


def run(assistant: Any, turns: list[dict], convs: list[dict], show: bool) -> Scorer:
    from assistant.cli.chat_cmds import run_conversation

    corpus = "\n".join(a.text for a in assistant.retriever.articles)
    scorer = Scorer(corpus)
    for row in turns:
        reply = assistant.respond(row["text"], row.get("history") or [])
        scorer.turn(row["id"], row, reply, row["text"])
        if show:
            _show(row["id"], row["text"], reply)
    for conv in convs:
        texts = [t["text"] for t in conv["turns"]]
        replies = _conversation_replies(assistant, texts, run_conversation)
        for n, (turn, reply) in enumerate(zip(conv["turns"], replies)):
            scorer.turn(f"{conv['id']}.{n}", turn, reply, turn["text"])
            if show:
                _show(f"{conv['id']}.{n}", turn["text"], reply)
        scorer.conversation(conv["id"], conv, replies)
    return scorer


def _conversation_replies(assistant: Any, texts: list[str], run_conversation: Any
                          ) -> list[Any]:
    """The Reply objects of `chat --jsonl`'s path (it keeps history the same way)."""
    replies: list[Any] = []

    class Recording:
        def respond(self, message: str, history: list[dict], locale: str | None = None
                    ) -> Any:
            reply = assistant.respond(message, history, locale=locale)
            replies.append(reply)
            return reply

    run_conversation(Recording(), texts, None)
    return replies


def _show(rid: str, text: str, reply: Any) -> None:
    print(f"\n--- {rid} [{reply.route}/{reply.act}] you> {text}\n{reply.text}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals conversation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", default="conversation_dev",
                    help="set name in evals/data (default conversation_dev), or a path")
    ap.add_argument("--show", action="store_true", help="print every reply")
    ap.add_argument("--misses", action="store_true", help="list act misses and defects")
    ap.add_argument("--stub-triage", action="store_true",
                    help="route every turn `advice` (only to work on replies when the "
                    "triage is broken; results are not comparable)")
    args = ap.parse_args(argv)
    quiet_model_logs()
    turns, convs = load_set(args.set)
    scorer = run(build(args.stub_triage), turns, convs, args.show)
    s = scorer.summary()
    print(table(["act", "n", "accuracy"],
                [[a, v["n"], v["accuracy"]] for a, v in s["per_act"].items()]
                + [["ALL", s["turns"], s["act_accuracy"]]]))
    checks = ["sections", "echo", "antecedent", "repetition", "pronoun", "safety_changed",
              "verbatim", "ruled_out", "label_twice"]
    print("\n" + table(["check", "defects"], [[c, s["defects"].get(c, 0)] for c in checks]))
    if args.misses or args.show:
        for m in s["misses"]:
            print("miss:", m)
        for kind, items in s["defect_list"].items():
            for item in items:
                print(f"{kind}: {item}")
    path = write_results(f"conversation-{Path(args.set).stem}", {**s, "set": args.set,
                                                                 "targets": TARGETS})
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
