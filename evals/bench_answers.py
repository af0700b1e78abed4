"""Answer speed: `python -m evals bench answers [--rounds N] [--json]`.

Offline: a whole turn (clean, embed, triage, retrieve, compose, verify) warm, with the
query-embedding cache emptied before each turn so every turn pays for its embedding,
against the embedding alone. LLM: the same turns against the test server
(assistant/testing/fake_openai.py on loopback, streaming with a 20 ms first-token delay);
the pipeline's overhead is the turn's wall time minus the time the server spent on its
requests. Nothing the model writes is shown before it is checked (issue 12), so the
check lag is from the server sending its last token to the Assistant yielding the
checked text.

Targets (issues 4, 12): offline p95 <= 2 x query-embedding p95; LLM overhead p95 <= 50 ms;
checked text within 100 ms of the endpoint's last token.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from evals.common import (
    DATA,
    percentile,
    quiet_model_logs,
    read_jsonl,
    summarize_ms,
    table,
    write_results,
)

TARGET_OFFLINE_RATIO = 2.0
TARGET_OVERHEAD_MS = 50.0
TARGET_FIRST_TEXT_MS = 100.0


def _forget_queries(assistant: Any) -> None:
    # The embedder caches query vectors; a benchmark of repeated questions would
    # otherwise measure the cache, not the turn.
    assistant.embedder.cache_clear()


def bench_offline(assistant: Any, questions: list[str], rounds: int) -> dict:
    from assistant.assistant import Final

    embed_ms, turn_ms, first_ms = [], [], []
    stages: dict[str, list[float]] = {}
    for q in questions:  # warm-up: first calls pay one-off costs
        assistant.respond(q)
    for _ in range(rounds):
        for q in questions:
            t = time.perf_counter()
            assistant.embedder.embed_query_uncached(q)
            embed_ms.append((time.perf_counter() - t) * 1000)
            _forget_queries(assistant)
            t = time.perf_counter()
            first = None
            reply = None
            for item in assistant.stream(q):
                if isinstance(item, Final):
                    reply = item.reply
                elif first is None:
                    first = time.perf_counter()
            end = time.perf_counter()
            turn_ms.append((end - t) * 1000)
            first_ms.append(((first or end) - t) * 1000)
            for k, v in reply.timings.items():
                stages.setdefault(k, []).append(v)
    return {
        "embed": summarize_ms(embed_ms),
        "turn": summarize_ms(turn_ms),
        "first_text": summarize_ms(first_ms),
        "stages_p50_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()},
        "ratio_p95": round(percentile(turn_ms, 95) / percentile(embed_ms, 95), 3),
        "ratio_p50": round(statistics.median(turn_ms) / statistics.median(embed_ms), 3),
    }


def bench_llm(questions: list[str], followups: list[tuple[list[dict], str]],
              rounds: int) -> dict:
    from assistant.assistant import Assistant, Final
    from assistant.config import Settings
    from assistant.testing.fake_openai import FakeOpenAI, grounded_answer
    from assistant.testing.fake_openai import Reply as Say

    overhead, lag, server_ms, turn_ms, embed_ms = [], [], [], [], []
    stages: dict[str, list[float]] = {}
    overhead_single: list[float] = []
    overhead_followup: list[float] = []  # two model calls: condense, then answer
    modes: dict[str, int] = {}
    with FakeOpenAI() as server:
        def model(body: dict) -> Any:
            msgs = body.get("messages", [])
            if msgs and "Standalone question:" in str(msgs[-1].get("content", "")):
                return Say("How do I talk to my partner about feeling far apart?",
                           first_token_delay=0.02)
            return Say(grounded_answer(body), first_token_delay=0.02, token_delay=0.002)

        server.default = model
        settings = Settings(openai_base_url=server.base_url, openai_api_key="sk-bench",
                            llm_model="fake-model", llm_timeout=5.0, llm_max_retries=0)
        assistant = Assistant.from_settings(settings)
        turns = [([], q) for q in questions] + followups
        for history, q in turns:  # warm-up
            assistant.respond(q, history)
        for _ in range(rounds):
            for history, q in turns:
                t = time.perf_counter()
                assistant.embedder.embed_query_uncached(q)
                embed_ms.append((time.perf_counter() - t) * 1000)
                _forget_queries(assistant)
                server.reset()
                server.default = model
                t = time.perf_counter()
                first = None
                reply = None
                for item in assistant.stream(q, history):
                    if isinstance(item, Final):
                        reply = item.reply
                    elif first is None:
                        first = time.perf_counter()
                end = time.perf_counter()
                reqs = server.requests
                spent = sum(r.server_seconds for r in reqs)
                turn_ms.append((end - t) * 1000)
                server_ms.append(spent * 1000)
                modes[reply.mode] = modes.get(reply.mode, 0) + 1
                if reply.mode != "llm" or not reqs:
                    continue
                overhead.append((end - t - spent) * 1000)
                (overhead_followup if history else overhead_single).append(overhead[-1])
                for k in ("embed", "triage", "retrieve", "verify"):
                    stages.setdefault(k, []).append(reply.timings.get(k, 0.0))
                answer = reqs[-1]
                if first is not None and answer.finished is not None:
                    lag.append((first - answer.finished) * 1000)
    return {
        "modes": modes,
        "turn": summarize_ms(turn_ms),
        "server": summarize_ms(server_ms),
        "overhead": summarize_ms(overhead),
        "overhead_single": summarize_ms(overhead_single),
        "overhead_followup": summarize_ms(overhead_followup),
        "first_text_lag": summarize_ms(lag),
        "query_embedding": summarize_ms(embed_ms),
        "stages_p50_ms": {k: round(statistics.median(v), 3) for k, v in stages.items()},
        "overhead_over_embedding_p95": round(percentile(overhead, 95)
                                             / percentile(embed_ms, 95), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals bench answers")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    quiet_model_logs()
    from assistant.assistant import Assistant
    from assistant.config import Settings

    rows = read_jsonl(DATA / "answers.jsonl")
    questions = [r["question"] for r in rows]
    followups = []
    for conv in read_jsonl(DATA / "answers_conversations.jsonl"):
        first, second = conv["turns"][0]["user"], conv["turns"][1]["user"]
        history = [{"role": "user", "content": first},
                   {"role": "assistant", "content": "(earlier reply) *(tip 4)* *(tip 3)*",
                    "route": "advice"}]
        followups.append((history, second))

    offline = Assistant.from_settings(Settings(openai_base_url=None, openai_api_key=None))
    off = bench_offline(offline, questions, args.rounds)
    llm = bench_llm([r["question"] for r in rows if r["route"] in ("advice", "therapy")],
                    followups, args.rounds)
    results = {"offline": off, "llm": llm}
    path = write_results("bench-answers", results)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0

    def row(name: str, s: dict) -> list[str]:
        return [name, str(s["n"]), f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}"]

    print(table(["offline (warm)", "n", "p50 ms", "p95 ms"], [
        row("query embedding alone", off["embed"]),
        row("whole turn", off["turn"]),
        row("first streamed text", off["first_text"]),
    ]))
    print("stage medians (ms): " + ", ".join(f"{k} {v:.1f}"
                                            for k, v in off["stages_p50_ms"].items()))
    ok_off = off["ratio_p95"] <= TARGET_OFFLINE_RATIO
    print(f"turn / embedding: p50 {off['ratio_p50']:.2f}x, p95 {off['ratio_p95']:.2f}x "
          f"(target p95 <= {TARGET_OFFLINE_RATIO:.0f}x) {'ok' if ok_off else 'MISSED'}\n")
    print(table(["LLM mode (test server)", "n", "p50 ms", "p95 ms"], [
        row("whole turn", llm["turn"]),
        row("server's own time", llm["server"]),
        row("pipeline overhead", llm["overhead"]),
        row("  first questions", llm["overhead_single"]),
        row("  follow-ups (condense + answer)", llm["overhead_followup"]),
        row("checked text after last token", llm["first_text_lag"]),
    ]))
    ok_over = llm["overhead"]["p95_ms"] <= TARGET_OVERHEAD_MS
    ok_lag = llm["first_text_lag"]["p95_ms"] <= TARGET_FIRST_TEXT_MS
    print("inside the overhead, stage medians (ms): " + ", ".join(
        f"{k} {v:.1f}" for k, v in llm["stages_p50_ms"].items()))
    print(f"query embedding alone in this phase: p50 {llm['query_embedding']['p50_ms']:.1f}, "
          f"p95 {llm['query_embedding']['p95_ms']:.1f} ms; overhead p95 = "
          f"{llm['overhead_over_embedding_p95']:.2f}x embedding p95")
    print(f"modes: {llm['modes']}")
    print(f"overhead p95 {llm['overhead']['p95_ms']:.1f} ms (target <= {TARGET_OVERHEAD_MS:.0f}) "
          f"{'ok' if ok_over else 'MISSED'}; checked text p95 "
          f"{llm['first_text_lag']['p95_ms']:.1f} ms (target <= {TARGET_FIRST_TEXT_MS:.0f}) "
          f"{'ok' if ok_lag else 'MISSED'}")
    print(f"\nresults: {path}")
    return 0 if ok_off and ok_over and ok_lag else 1
