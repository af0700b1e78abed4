"""Retrieval scoring shared by the evals and the tests: ranks, hit@k, MRR, paired comparisons."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..retrieval import Mode, Passage


class Searchable(Protocol):
    """What scoring needs from a retriever."""

    @property
    def chunks(self) -> Sequence[Any]: ...

    def retrieve(self, query: str, k: int | None = None, *,
                 mode: Mode | None = None) -> list[Passage]: ...


@dataclass(frozen=True)
class Comparison:
    """Two modes scored on the same questions: mean difference, its 95% interval, wins."""

    mean_diff: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int

    @property
    def beyond_noise(self) -> bool:
        """True when the 95% interval of the difference excludes zero."""
        return self.low > 0 or self.high < 0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file, skipping blank lines."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def first_hit_rank(sections: Sequence[str], answers: Sequence[str]) -> int | None:
    """The 1-based rank of the first section that answers, or None."""
    for rank, sid in enumerate(sections, 1):
        if sid in answers:
            return rank
    return None


def evaluate(retriever: Searchable, rows: Sequence[dict[str, Any]], mode: Mode) -> dict[str, Any]:
    """Score one retrieval mode over labelled rows; ranks count distinct sections."""
    k = len({c.section_id for c in retriever.chunks})
    ranks: list[int | None] = []
    misses = []
    for row in rows:
        passages = retriever.retrieve(row["question"], k, mode=mode)
        sections = list(dict.fromkeys(p.section_id for p in passages))
        rank = first_hit_rank(sections, row["answers"])
        ranks.append(rank)
        if rank != 1:
            misses.append({"id": row["id"], "question": row["question"],
                           "answers": row["answers"], "got": sections[:3], "rank": rank})
    n = len(rows)
    rr = [1.0 / r if r else 0.0 for r in ranks]
    return {
        "mode": mode, "n": n,
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@3": sum(r is not None and r <= 3 for r in ranks) / n,
        "mrr": sum(rr) / n,
        "rr": rr, "ids": [row["id"] for row in rows], "misses": misses,
    }


def compare(a: Sequence[float], b: Sequence[float], *, rounds: int = 10_000,
            seed: int = 0) -> Comparison:
    """Paired bootstrap of mean(a) - mean(b) over the same questions, with win counts."""
    if len(a) != len(b) or not a:
        raise ValueError("compare needs two equally long, non-empty score lists")
    diffs = [x - y for x, y in zip(a, b)]
    rng = random.Random(seed)  # fixed: the same data always gives the same interval
    n = len(diffs)
    means = sorted(statistics.fmean(rng.choices(diffs, k=n)) for _ in range(rounds))
    return Comparison(
        mean_diff=statistics.fmean(diffs),
        low=means[int(0.025 * rounds)],
        high=means[int(0.975 * rounds) - 1],
        wins=sum(d > 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        losses=sum(d < 0 for d in diffs),
    )


__all__ = ["Comparison", "Searchable", "compare", "evaluate", "first_hit_rank", "read_jsonl"]
