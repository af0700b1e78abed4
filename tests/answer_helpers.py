"""Fixtures for the answering tests: one offline Assistant per session, a fake LLM per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.testing.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent
CORPUS_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "corpus").glob("*.md"))
SECRET_KEY = "sk-test-DO-NOT-PRINT-4f9a"

# Phrases of the article's tips: none may appear in a crisis or abuse reply.
TIP_PHRASES = (
    "Begin with yourself",
    "looking at yourself",
    "Don’t wait for your spouse",
    "Be loving in little ways",
    "Spend quality time",
    "date night",
    "Be honest about feeling disconnected",
    "couples therapy can be a remarkable step",
    "*(tip",
)


class ScriptedTriage:
    """A triage that routes by a script, so answering tests don't depend on triage's tuning.

    Messages not in the script are `advice`; sticky_route follows the earlier messages the
    script routes crisis or abuse, as the real triage does. The real triage is exercised
    end to end in test_assistant.py.
    """

    def __init__(self, routes: dict[str, str] | None = None) -> None:
        self.routes = dict(SCRIPT, **(routes or {}))
        self.calls: list[str] = []

    def classify(self, message, history=None, *, embedding=None):
        from assistant.triage import TriageResult

        self.calls.append(message)
        route = self.routes.get(message, "advice")
        sticky = None
        for h in history or []:
            r = self.routes.get(h)
            if r in ("crisis", "abuse") and sticky != "crisis":
                sticky = r
        return TriageResult(route, 0.9, [f"scripted: {route}"], sticky, ())

    def rules_route(self, message):
        return self.routes.get(message, "advice")


SCRIPT = {
    "I want to end my life, nothing matters anymore": "crisis",
    "he hit me last night and says it's my fault for nagging": "abuse",
    "what's the capital of Australia": "off_topic",
    "we've tried everything for two years, nothing changes, maybe we need counselling?":
        "therapy",
    "is couples therapy only for people who are about to split up?": "therapy",
    "we fight constantly about the same things and it never gets resolved": "therapy",
}


@pytest.fixture(scope="session", name="triage")
def triage_fixture(embedder):
    """The real triage (helper modules' rules and examples)."""
    from assistant.config import Settings
    from assistant.triage import load_triage

    return load_triage(Settings(), embedder=embedder)


@pytest.fixture(scope="session", name="offline_assistant")
def offline_assistant_fixture(retriever):
    """The offline Assistant over the real corpus and index, with a scripted triage."""
    from assistant.assistant import Assistant
    from assistant.config import Settings

    return Assistant(Settings(corpus_dir=REPO / "corpus"), retriever=retriever,
                     triage=ScriptedTriage())


@pytest.fixture(name="fake_openai")
def fake_openai_fixture() -> Iterator[FakeOpenAI]:
    """A real OpenAI-compatible server on loopback, scripted by the test."""
    with FakeOpenAI(api_key=SECRET_KEY) as server:
        yield server


def llm_settings(base_url: str, **overrides):
    from assistant.config import Settings

    values = {
        "corpus_dir": REPO / "corpus",
        "openai_base_url": base_url,
        "openai_api_key": SECRET_KEY,
        "llm_model": "fake-model",
        "llm_timeout": 1.0,
        "llm_max_retries": 2,
    }
    values.update(overrides)
    return Settings(**values)


def make_llm_assistant(base_url: str, offline_assistant, retriever, **overrides):
    from assistant.assistant import Assistant
    from assistant.llm import LLMResponder

    settings = llm_settings(base_url, **overrides)
    llm = LLMResponder(settings, retriever)
    return Assistant(settings, retriever=retriever, triage=offline_assistant.triage, llm=llm,
                     bank=offline_assistant.bank)


@pytest.fixture(name="llm_assistant")
def llm_assistant_fixture(fake_openai, offline_assistant, retriever):
    """An Assistant whose LLM is the fake server (the real openai client, over TCP)."""
    return make_llm_assistant(fake_openai.base_url, offline_assistant, retriever)
