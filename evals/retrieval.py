"""Retrieval quality: hit@1, hit@3 and MRR for dense, BM25 and hybrid, side by side, and
whether hybrid beats dense by more than noise (paired bootstrap over the questions).

    python -m evals retrieval [--set retrieval|retrieval_heldout|all] [--misses]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from assistant.testing.metrics import compare, evaluate, read_jsonl

from .common import DATA, quiet_model_logs, table, write_results

MODES = ("dense", "lexical", "hybrid")


def load_set(name: str) -> list[dict[str, Any]]:
    """Rows of one labelled set, or of both (`all`)."""
    names = ["retrieval", "retrieval_heldout"] if name == "all" else [name]
    rows: list[dict[str, Any]] = []
    for n in names:
        rows += [dict(r, set=n) for r in read_jsonl(DATA / f"{n}.jsonl")]
    return rows


def _print_comparison(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Hybrid against dense, question by question: the MRR difference and its interval."""
    hybrid, dense = results["hybrid"], results["dense"]
    c = compare(hybrid["rr"], dense["rr"])
    verdict = "beyond noise" if c.beyond_noise else "within noise"
    print(f"\nhybrid - dense MRR: {c.mean_diff:+.4f} (95% bootstrap interval "
          f"{c.low:+.4f} .. {c.high:+.4f}: {verdict}); per question: hybrid better on "
          f"{c.wins}, equal on {c.ties}, worse on {c.losses}")
    for qid, h, d in zip(hybrid["ids"], hybrid["rr"], dense["rr"]):
        if h != d:
            print(f"  {qid}: reciprocal rank hybrid {h:.3f}, dense {d:.3f}")
    return {"mean_diff": c.mean_diff, "low": c.low, "high": c.high, "wins": c.wins,
            "ties": c.ties, "losses": c.losses, "beyond_noise": c.beyond_noise}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the retrieval eval and write its results file."""
    ap = argparse.ArgumentParser(prog="python -m evals retrieval", description=__doc__)
    ap.add_argument("--set", default="retrieval",
                    choices=("retrieval", "retrieval_heldout", "all"))
    ap.add_argument("--misses", action="store_true", help="list the hybrid misses")
    args = ap.parse_args(argv)

    from assistant.config import get_settings
    from assistant.retrieval import build_retriever

    quiet_model_logs()
    retriever = build_retriever(get_settings())
    rows = load_set(args.set)
    results = {m: evaluate(retriever, rows, m) for m in MODES}
    print(f"Retrieval eval: {len(rows)} questions ({args.set}), "
          f"{len(retriever.chunks)} chunks\n")
    print(table(["mode", "hit@1", "hit@3", "MRR"],
                [[m, f"{r['hit@1']:.3f}", f"{r['hit@3']:.3f}", f"{r['mrr']:.3f}"]
                 for m, r in results.items()]))
    comparison = _print_comparison(results)
    if args.misses:
        print("\nHybrid misses at rank 1:")
        for m in results["hybrid"]["misses"]:
            print(f"  {m['id']} rank={m['rank']} want={m['answers']} got={m['got']}: "
                  f"{m['question'][:90]}")
    path = write_results(f"retrieval-{args.set}", {
        "set": args.set, "results": list(results.values()), "hybrid_vs_dense": comparison,
    })
    print(f"\nwrote {path}")
    return 0
