"""Evals and benchmarks: `python -m evals NAME` (retrieval, triage, answers, bench ...)."""
