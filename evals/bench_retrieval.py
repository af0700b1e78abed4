"""Retrieval speed: warm hybrid latency vs the query embedding alone, ingest time, memory.

    python -m evals bench retrieval [--repeat N]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .common import DATA, quiet_model_logs, read_jsonl, summarize_ms, table, write_results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evals bench retrieval", description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the questions")
    args = ap.parse_args(argv)

    from assistant.config import get_settings
    from assistant.index import VectorIndex, load_embedder
    from assistant.retrieval import Retriever

    quiet_model_logs()
    questions = [r["question"] for r in read_jsonl(DATA / "retrieval.jsonl")]
    t0 = time.perf_counter()
    settings = get_settings()
    embedder = load_embedder(settings)
    model_load_s = time.perf_counter() - t0

    # Ingest: a full build into fresh folders, after the model is loaded.
    builds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(5):
            s = settings.model_copy(update={"data_dir": Path(tmp) / f"d{i}"})
            t = time.perf_counter()
            index = VectorIndex(s, embedder)
            index.ensure(force=True)
            builds.append(time.perf_counter() - t)
        retriever = Retriever(index, index.ensure(), top_k=settings.top_k)

        # Warm up, then time: embedding alone, and a whole hybrid retrieval
        # (uncached embedding + dense + BM25 + fusion), alternating so both see the same load.
        for q in questions[:5]:
            retriever.retrieve(q, embedding=embedder.embed_query_uncached(q))
        embed_ms, hybrid_ms, search_only_ms = [], [], []
        for _ in range(args.repeat):
            for q in questions:
                t = time.perf_counter()
                embedder.embed_query_uncached(q)
                embed_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                vec = embedder.embed_query_uncached(q)
                t_mid = time.perf_counter()
                retriever.retrieve(q, embedding=vec)
                t_end = time.perf_counter()
                hybrid_ms.append((t_end - t) * 1000)
                search_only_ms.append((t_end - t_mid) * 1000)

    emb, hyb, srch = summarize_ms(embed_ms), summarize_ms(hybrid_ms), summarize_ms(search_only_ms)
    ratio_p95 = hyb["p95_ms"] / emb["p95_ms"]
    ratio_p50 = hyb["p50_ms"] / emb["p50_ms"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(questions)} questions x {args.repeat} passes, {len(retriever.chunks)} chunks, "
          f"Chroma {settings.chroma_mode}\n")
    print(table(["measure", "p50 ms", "p95 ms", "n"], [
        ["query embedding alone", emb["p50_ms"], emb["p95_ms"], emb["n"]],
        ["hybrid retrieval (embed + search)", hyb["p50_ms"], hyb["p95_ms"], hyb["n"]],
        ["search only (dense + BM25 + fuse)", srch["p50_ms"], srch["p95_ms"], srch["n"]],
    ]))
    print(f"\nratio hybrid/embedding: p50 {ratio_p50:.2f}x, p95 {ratio_p95:.2f}x "
          f"(target p95 <= 1.5x)")
    print(f"ingest (full build after model load): median {statistics.median(builds):.3f} s, "
          f"max {max(builds):.3f} s over {len(builds)} builds (target <= 5 s)")
    print(f"model load: {model_load_s:.1f} s; peak memory (RSS): {peak_mb:.0f} MB")
    write_results("bench-retrieval", {
        "embedding": emb, "hybrid": hyb, "search_only": srch,
        "ratio_p50": ratio_p50, "ratio_p95": ratio_p95,
        "ingest_s": builds, "model_load_s": model_load_s, "peak_rss_mb": peak_mb,
    })
    return 0
