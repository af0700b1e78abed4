"""Triage speed: p50/p95 per message, warm, and the `--jsonl` batch throughput.

    python -m evals bench triage [--repeat N] [--rules-only]

Rows: the authored eval messages (dev + held-out, including long posts). Timed:
  rules             the rules layer alone (no model)
  rules, long       the rules layer on the long red-team posts (over 100 words, from
                    every blind red-team set): the budget holds where the text is longest
  shared embedding  rules + semantic layer, the turn's query embedding passed in
                    (the target: p95 < 20 ms beyond that embedding)
  own embedding     rules + semantic layer computing the embedding itself
  jsonl             `assistant triage --jsonl` in-process: messages per second
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Sequence

from .common import quiet_model_logs, summarize_ms, table, write_results
from .triage import REDTEAM, load_set

TARGET_P95_MS = 20.0
LONG_WORDS = 100  # a red-team row longer than this is timed in the long-post group


def long_posts() -> list[dict]:
    """The red-team rows over LONG_WORDS words: real-length posts with one signal sentence."""
    return [r for name in REDTEAM for r in load_set(name) if len(r["text"].split()) > LONG_WORDS]


def _time(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _throughput(triage, rows: list[dict]) -> dict[str, float]:
    from assistant.cli.triage_cmds import run_jsonl

    lines = "".join(json.dumps({"id": r["id"], "text": r["text"],
                                "history": r.get("history", [])}) + "\n" for r in rows)
    t0 = time.perf_counter()
    run_jsonl(triage, io.StringIO(lines), io.StringIO())
    seconds = time.perf_counter() - t0
    return {"messages": len(rows), "seconds": round(seconds, 3),
            "per_second": round(len(rows) / seconds, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals bench triage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the messages (default 3)")
    ap.add_argument("--rules-only", action="store_true", help="skip the semantic layer timings")
    args = ap.parse_args(argv)

    from assistant.config import Settings
    from assistant.triage import load_triage

    rows = load_set("dev") + load_set("heldout")
    items = [(r["text"], r.get("history")) for r in rows] * args.repeat
    settings = Settings()
    results: dict[str, dict] = {}

    rules = load_triage(settings)
    for text, hist in items[:20]:
        rules.classify(text, hist)  # warm: compiled patterns, caches
    results["rules"] = summarize_ms(_time(lambda x: rules.classify(x[0], x[1]), items))
    long_items = [(r["text"], r.get("history")) for r in long_posts()] * args.repeat
    results["rules, long"] = summarize_ms(
        _time(lambda x: rules.classify(x[0], x[1]), long_items))
    results["jsonl rules"] = _throughput(rules, rows)

    if not args.rules_only:
        quiet_model_logs()
        from assistant.index import load_embedder

        embedder = load_embedder(settings)
        t0 = time.perf_counter()
        full = load_triage(settings, embedder=embedder)
        results["semantic load"] = {"seconds": round(time.perf_counter() - t0, 3)}
        vecs = dict(zip((r["text"] for r in rows),
                        embedder.embed_documents([r["text"] for r in rows])))
        shared = [(t, h, vecs[t]) for t, h in items]
        for t, h, v in shared[:20]:
            full.classify(t, h, embedding=v)
        results["shared embedding"] = summarize_ms(
            _time(lambda x: full.classify(x[0], x[1], embedding=x[2]), shared))
        uncached = [(f"{t} ", h) for t, h in items[: len(rows)]]  # miss the query cache
        results["own embedding"] = summarize_ms(
            _time(lambda x: full.classify(x[0], x[1]), uncached))
        results["jsonl full"] = _throughput(full, [dict(r, text=r["text"] + "  ") for r in rows])

    timed = [(k, v) for k, v in results.items() if "p95_ms" in v]
    print(table(["layer", "n", "p50 ms", "p95 ms", "mean ms"],
                [[k, v["n"], v["p50_ms"], v["p95_ms"], v["mean_ms"]] for k, v in timed]))
    for k, v in results.items():
        if "per_second" in v:
            print(f"{k}: {v['messages']} messages in {v['seconds']} s = {v['per_second']}/s")
    beyond = results.get("shared embedding", results["rules"])["p95_ms"]
    long_p95 = results["rules, long"]["p95_ms"]
    ok = beyond < TARGET_P95_MS and long_p95 < TARGET_P95_MS
    print(f"target p95 < {TARGET_P95_MS:.0f} ms beyond the query embedding: "
          f"{'met' if beyond < TARGET_P95_MS else 'MISSED'} ({beyond} ms); on long posts "
          f"(rules): {'met' if long_p95 < TARGET_P95_MS else 'MISSED'} ({long_p95} ms)")
    path = write_results("bench-triage", {"results": results, "target_p95_ms": TARGET_P95_MS})
    print(f"results: {path}")
    return 0 if ok else 1
