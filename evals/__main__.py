"""Run an eval or benchmark: `python -m evals NAME [ARGS]`."""

from __future__ import annotations

import importlib
import sys

RUNNERS = {
    "retrieval": "evals.retrieval",
    "triage": "evals.triage",
    "answers": "evals.answers",
    "conversation": "evals.conversation",
    "bench": "evals.bench",
    "train-triage": "evals.train_triage",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in RUNNERS:
        print("usage: python -m evals {" + ",".join(RUNNERS) + "} [ARGS]", file=sys.stderr)
        return 2
    module = importlib.import_module(RUNNERS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
