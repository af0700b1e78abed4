"""Speed benchmarks: `python -m evals bench {retrieval,triage,answers,bounds,ui,all}`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

PARTS = ("retrieval", "triage", "answers", "bounds", "ui")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(argv or [])
    what = argv[0] if argv else "all"
    if what not in (*PARTS, "all"):
        print(f"usage: python -m evals bench {{{','.join(PARTS)},all}} [ARGS]", file=sys.stderr)
        return 2
    parts = PARTS if what == "all" else (what,)
    rc = 0
    for part in parts:
        print(f"\n=== bench {part} ===", flush=True)
        rc |= int(importlib.import_module(f"evals.bench_{part}").main(argv[1:]) or 0)
    return rc
