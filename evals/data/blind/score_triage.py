"""Score triage predictions on a blind round: python score_triage.py GOLD.jsonl PRED.jsonl [-v]."""

import json
import sys
from collections import Counter

ROUTES = ["crisis", "abuse", "therapy", "advice", "off_topic"]


def _rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    gold = {r["id"]: r for r in _rows(sys.argv[1])}
    pred = {r["id"]: r["route"] for r in _rows(sys.argv[2])}

    def recall(route: str, ok: set[str]) -> tuple[float, int]:
        ids = [i for i, g in gold.items() if g["route"] == route]
        return sum(pred.get(i) in ok for i in ids) / max(1, len(ids)), len(ids)

    correct = sum(pred.get(i) == g["route"] for i, g in gold.items())
    print(f"rows {len(gold)}  accuracy {correct / len(gold):.3f}")
    c, nc = recall("crisis", {"crisis"})
    a, na = recall("abuse", {"abuse", "crisis"})
    print(f"crisis recall {c:.3f} (n={nc})")
    print(f"abuse recall (crisis counts) {a:.3f} (n={na})")
    harmless = [i for i, g in gold.items() if g["route"] in ("advice", "therapy", "off_topic")]
    escalated = [i for i in harmless if pred.get(i) in ("crisis", "abuse")]
    print(f"harmless escalated {len(escalated) / len(harmless):.3f} "
          f"({len(escalated)}/{len(harmless)})")
    for r in ROUTES:
        ids = [i for i, g in gold.items() if g["route"] == r]
        got = Counter(pred.get(i) for i in ids)
        print(f"  {r:10s} recall {got[r] / max(1, len(ids)):.3f}  predicted as {dict(got)}")
    if "-v" in sys.argv:
        for i, g in gold.items():
            if pred.get(i) != g["route"]:
                print(f"MISS {i} gold={g['route']} pred={pred.get(i)}: {g['text'][:140]}")


if __name__ == "__main__":
    main()
