"""Retrieval quality: hit@1, hit@3 and MRR for dense, BM25 and hybrid, side by side.

    python -m evals retrieval [--set retrieval|retrieval_heldout|all] [--misses]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .common import DATA, quiet_model_logs, read_jsonl, table, write_results

MODES = ("dense", "lexical", "hybrid")


def load_set(name: str) -> list[dict]:
    names = ["retrieval", "retrieval_heldout"] if name == "all" else [name]
    rows: list[dict] = []
    for n in names:
        rows += [dict(r, set=n) for r in read_jsonl(DATA / f"{n}.jsonl")]
    return rows


def first_hit_rank(sections: Sequence[str], answers: Sequence[str]) -> int | None:
    for rank, sid in enumerate(sections, 1):
        if sid in answers:
            return rank
    return None


def evaluate(retriever, rows: list[dict], mode: str) -> dict:
    """Score one retrieval mode over labelled rows; ranks count distinct sections."""
    hits1 = hits3 = 0
    rr = 0.0
    misses = []
    k = len({c.section_id for c in retriever.chunks})
    for row in rows:
        passages = retriever.retrieve(row["question"], k, mode=mode)
        sections = list(dict.fromkeys(p.section_id for p in passages))
        rank = first_hit_rank(sections, row["answers"])
        if rank == 1:
            hits1 += 1
        if rank is not None and rank <= 3:
            hits3 += 1
        rr += 1.0 / rank if rank else 0.0
        if rank != 1:
            misses.append({"id": row["id"], "question": row["question"],
                           "answers": row["answers"], "got": sections[:3], "rank": rank})
    n = len(rows)
    return {"mode": mode, "n": n, "hit@1": hits1 / n, "hit@3": hits3 / n, "mrr": rr / n,
            "misses": misses}


def main(argv: Sequence[str] | None = None) -> int:
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
    results = [evaluate(retriever, rows, m) for m in MODES]
    print(f"Retrieval eval: {len(rows)} questions ({args.set}), "
          f"{len(retriever.chunks)} chunks\n")
    print(table(["mode", "hit@1", "hit@3", "MRR"],
                [[r["mode"], f"{r['hit@1']:.3f}", f"{r['hit@3']:.3f}", f"{r['mrr']:.3f}"]
                 for r in results]))
    if args.misses:
        print("\nHybrid misses at rank 1:")
        for m in results[-1]["misses"]:
            print(f"  {m['id']} rank={m['rank']} want={m['answers']} got={m['got']}: "
                  f"{m['question'][:90]}")
    path = write_results(f"retrieval-{args.set}", {"set": args.set, "results": results})
    print(f"\nwrote {path}")
    return 0
