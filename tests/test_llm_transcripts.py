"""Recorded model outputs replayed through the verifier: every hole issue 12 found stays shut.

tests/data/llm_transcripts.jsonl holds answers written to probe each hole
(`"model": "written"`) and the raw answers of real small models (SmolLM2-135M-Instruct,
Gemma 3 270M, served by llama.cpp), recorded with
`python -m evals answers --real-llm --record tests/data/llm_transcripts.jsonl`. Each is
checked the way the assistant checks a live answer, against the passages and the
instructions it was sent.
"""

from __future__ import annotations

import json
import re

import pytest

from assistant.config import Settings
from assistant.corpus import chunk_corpus, load_corpus
from assistant.llm import load_prompts, prompt_instructions, render_markers
from assistant.respond import SentenceBank
from assistant.retrieval import Passage
from assistant.verify import LOST_SHARE, Verifier, prompt_leaks
from tests.answer_helpers import REPO

ROWS = [json.loads(line) for line in
        (REPO / "tests/data/llm_transcripts.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()]
_LIST = re.compile(r"^\s*(\d{1,2})[.)](\s|$)")


@pytest.fixture(scope="module")
def world(embedder):
    settings = Settings(corpus_dir=REPO / "corpus")
    articles = load_corpus(settings.corpus_dir)
    chunks = chunk_corpus(articles, settings.chunk_tokens, settings.chunk_overlap_sentences)
    verifier = Verifier(SentenceBank(articles, embedder), embedder)
    return verifier, {c.chunk_id: c for c in chunks}, articles[0].title


def replay(row, world):
    verifier, chunks, title = world
    passages = [Passage(chunks[c], 1.0) for c in row["passages"]]
    instructions = row.get("instructions") or prompt_instructions(load_prompts(), title)
    verdict = verifier.check(row["answer"], passages, message=row["message"],
                             prompt=instructions,
                             truncated=row.get("finish_reason") == "length")
    return verdict, passages, instructions


def test_the_set_has_a_probe_for_each_hole():
    assert len({r["hole"] for r in ROWS if r["model"] == "written"}) >= 10


def test_the_set_holds_raw_outputs_of_both_real_models():
    # recorded from llama.cpp runs: the answers that finished within the run's deadline
    real = [r for r in ROWS if r["model"] != "written"]
    assert {r["model"] for r in real} == {"smollm2", "gemma3"}
    assert all(r.get("recorded") and r.get("instructions") for r in real)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['model']}-{r['id']}" for r in ROWS])
def test_a_recorded_answer_is_shown_only_as_checked_text(row, world):
    verdict, passages, instructions = replay(row, world)
    expect = row.get("expect", {})
    if "action" in expect:
        assert verdict.action == expect["action"]
    if verdict.action == "replace":
        return  # the offline reply is shown instead (its own tests cover it)
    verifier = world[0]
    shown, _ = render_markers(verdict.text, passages)
    # Nothing of the prompt: no instructions, passage scaffolding or template tokens.
    assert prompt_leaks(shown, instructions) == []
    # An answer is shown only if most of it survived.
    assert verdict.lost_words <= LOST_SHARE and verdict.lost_sentences <= LOST_SHARE
    # What is shown checks clean: a second pass drops nothing.
    again = verifier.check(verdict.text, passages, message=row["message"], prompt=instructions)
    assert [c.text for c in again.dropped] == []
    # Every sentence counts once; lists are numbered without gaps or empty items.
    kept = [" ".join(c.text.lower().split()) for c in again.checks if c.ok]
    assert len(kept) == len(set(kept))
    numbers = [int(m.group(1)) for line in verdict.text.splitlines() if (m := _LIST.match(line))]
    assert all(b in (1, a + 1) for a, b in zip(numbers, numbers[1:], strict=False))
    assert not any(_LIST.match(line) and not _LIST.sub("", line).strip()
                   for line in verdict.text.splitlines())
    if row.get("finish_reason") == "length":
        assert verdict.text.rstrip("*_ ").endswith((".", "!", "?", "]", ")", '"', "”"))
    if row["message"].isascii():  # nothing in a script the person did not write in
        assert not re.search(r"[\u0400-\u04ff\u0590-\u06ff\u3040-\u9fff]", shown)
    for hidden in expect.get("hidden", []):
        assert hidden not in shown
    if "numbered" in expect:
        assert numbers == expect["numbered"]
    if "ends" in expect:
        assert verdict.text.endswith(expect["ends"])
    for phrase, n in expect.get("cited", {}).items():
        line = next(c.text for c in again.checks if phrase in c.text)
        assert line.rstrip(".").endswith(f"[{n}]")
