"""Time bounds: `python -m evals bench bounds [--rounds N]`.

How long the turns that must not wait actually take, against the OpenAI-compatible test
server on loopback (assistant/testing/fake_openai.py). The unit tests check what happens
(no request is sent, the offline reply is given); the wall-clock bounds live here, where a
loaded CI machine cannot make a test flaky.

Targets (p95 over the rounds):
- a crisis message while the endpoint hangs, first turn and follow-up: <= 1 s
- every endpoint failure (401, 429, 5xx, a hang, a broken stream): the offline reply
  within 8 s (timeout 1 s, two retries with backoff)
- an endpoint slower than the turn's deadline (1.5 s): the offline reply within 8 s
- the triage's LLM second opinion against a hung endpoint (timeout 0.5 s): <= 3 s
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

from evals.common import quiet_model_logs, summarize_ms, table, write_results

QUESTION = "we barely talk anymore, it feels like we're roommates"
CRISIS = "I want to end my life, nothing matters anymore"
HISTORY = [
    {"role": "user", "content": "we never do anything fun anymore"},
    {"role": "assistant", "content": "Quality time helps. *(tip 3)*", "route": "advice"},
]
TARGETS_S = {"crisis, endpoint hung": 1.0, "endpoint failure": 8.0,
             "past the deadline": 8.0, "triage LLM, endpoint hung": 3.0}


def _seconds(fn: Callable[[], Any], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _assistant(base_url: str, retriever: Any, **overrides: Any) -> Any:
    from assistant.assistant import Assistant
    from assistant.config import Settings
    from assistant.llm import LLMResponder
    from assistant.triage import load_triage

    settings = Settings(openai_base_url=base_url, openai_api_key="sk-bench",
                        llm_model="fake-model", llm_timeout=1.0, llm_max_retries=2,
                        **overrides)
    # The rules alone, without the LLM's second opinion: what is timed is the responder.
    triage = load_triage(settings.model_copy(update={"triage_llm": False}))
    return Assistant(settings, retriever=retriever, triage=triage,
                     llm=LLMResponder(settings, retriever))


def measure(rounds: int) -> dict[str, list[float]]:
    """Wall-clock seconds of each bounded turn, `rounds` times each."""
    from assistant.config import Settings
    from assistant.retrieval import build_retriever
    from assistant.testing.fake_openai import FakeOpenAI, Hang, Status, grounded_answer
    from assistant.testing.fake_openai import Reply as Say
    from assistant.triage import load_triage

    retriever = build_retriever(Settings())
    out: dict[str, list[float]] = {}
    with FakeOpenAI() as server:
        a = _assistant(server.base_url, retriever)
        server.default = Hang(30)
        a.respond(CRISIS)  # warm-up: first calls pay one-off costs; crisis never asks the LLM
        out["crisis, endpoint hung"] = _seconds(lambda: a.respond(CRISIS), rounds)
        out["crisis, endpoint hung"] += _seconds(lambda: a.respond(CRISIS, HISTORY), rounds)
        server.default = Status(500)
        out["endpoint failure"] = _seconds(lambda: a.respond(QUESTION), rounds)
        server.default = Hang(5)
        out["endpoint failure"] += _seconds(lambda: a.respond(QUESTION), rounds)
        slow = _assistant(server.base_url, retriever, llm_deadline=1.5)
        server.default = lambda body: Say(grounded_answer(body), token_delay=0.2)
        out["past the deadline"] = _seconds(lambda: slow.respond(QUESTION), rounds)
        server.default = Hang(5)
        settings = Settings(openai_base_url=server.base_url, triage_llm_timeout=0.5)
        triage = load_triage(settings)
        msg = "we argue about money a lot"
        base = triage.classify(msg)
        out["triage LLM, endpoint hung"] = _seconds(
            lambda: triage.escalate_with_llm(base, msg), rounds)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the bounded turns, print them against their targets, write the results."""
    ap = argparse.ArgumentParser(prog="python -m evals bench bounds", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="times each case runs (default 3)")
    args = ap.parse_args(argv)
    quiet_model_logs()
    seconds = measure(args.rounds)
    summary = {k: summarize_ms([s * 1000 for s in v]) for k, v in seconds.items()}
    ok = True
    rows = []
    for k, s in summary.items():
        met = s["p95_ms"] / 1000 <= TARGETS_S[k]
        ok &= met
        rows.append([k, s["n"], s["p50_ms"], s["p95_ms"], f"<= {TARGETS_S[k] * 1000:.0f}",
                     "met" if met else "MISSED"])
    print(table(["case", "n", "p50 ms", "p95 ms", "target ms", ""], rows))
    path = write_results("bench-bounds", {"results": summary, "targets_s": TARGETS_S})
    print(f"results: {path}")
    return 0 if ok else 1
