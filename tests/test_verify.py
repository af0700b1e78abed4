"""Verification: citations name retrieved passages, quotes are verbatim, sentences supported."""

from __future__ import annotations

import json

import pytest

from assistant.respond import SentenceBank
from assistant.retrieval import Passage
from assistant.verify import Verifier, split_answer
from tests.answer_helpers import REPO


@pytest.fixture(scope="module")
def verifier(retriever):
    bank = SentenceBank(retriever.articles, retriever.embedder)
    return Verifier(bank, retriever.embedder)


def section_passages(retriever, *section_ids: str) -> list[Passage]:
    return [Passage(c, 1.0) for sid in section_ids for c in retriever.chunks
            if c.section_id == sid]


def test_calibration_keeps_paraphrases_and_catches_every_unsupported_claim(verifier, retriever):
    """The recorded measurement: on the calibration set the rule catches all invented claims."""
    rows = [json.loads(line) for line in
            (REPO / "evals/data/verify_calibration.jsonl").read_text().splitlines() if line]
    kept = caught = 0
    supported = [r for r in rows if r["supported"]]
    unsupported = [r for r in rows if not r["supported"]]
    assert len(supported) >= 30 and len(unsupported) >= 20
    for r in rows:
        verdict = verifier.check(r["text"] + " [1]", section_passages(retriever, r["section"]))
        ok = verdict.checks[0].ok
        kept += ok and r["supported"]
        caught += (not ok) and not r["supported"]
    assert caught == len(unsupported)
    assert kept >= 0.9 * len(supported)


def test_a_planted_sentence_is_dropped_and_the_reply_says_so(verifier, retriever):
    passages = section_passages(retriever, "tip-4", "tip-3")
    answer = (
        "That sounds lonely. "
        "Even saying, “I’ve been feeling a bit far apart lately,” can lead to greater "
        "connection [1]. "
        "Research shows that 70 percent of couples stop talking after their first child [1]. "
        "Small rituals like cooking dinner together can bring back closeness [2]. "
        "Could you try saying that this week?"
    )
    verdict = verifier.check(answer, passages)
    assert verdict.action == "repaired"
    assert "70 percent" not in verdict.text
    assert "far apart lately" in verdict.text and "cooking dinner" in verdict.text
    assert verdict.summary() == "repaired: dropped 1 unsupported sentence"
    assert verdict.text.endswith("Could you try saying that this week?")


def test_citing_a_passage_that_was_not_retrieved_fails(verifier, retriever):
    passages = section_passages(retriever, "tip-2")
    answer = ("It is the little things, not big gestures, that sustain a relationship [1]. "
              "Great big romantic gestures are wonderful, but it is the little things that "
              "sustain a relationship [7].")
    verdict = verifier.check(answer, passages)
    assert verdict.bad_citations == [7]
    assert [c.ok for c in verdict.checks] == [True, False]
    assert "[7]" not in verdict.text


def test_quotes_must_be_verbatim_but_quote_marks_are_forgiven(verifier, retriever):
    passages = section_passages(retriever, "tip-1")
    straight = 'As the article says, "Don\'t wait for your spouse to make the first move." [1]'
    verdict = verifier.check(straight, passages)
    assert verdict.action == "ok"
    assert "Don’t wait for your spouse to make the first move." in verdict.text  # exact text

    invented = 'The article says "never let your partner see you upset" [1].'
    verdict = verifier.check(invented, passages)
    assert verdict.bad_quotes == ["never let your partner see you upset"]
    assert verdict.action == "replace"  # nothing supported is left
    assert verdict.summary() == "replaced by the offline reply"


def test_questions_and_an_opening_acknowledgement_need_no_passage(verifier, retriever):
    passages = section_passages(retriever, "tip-3")
    answer = ("It sounds like you two have been running on empty. "
              "Even small rituals, such as weekly date nights or cooking dinner together, can "
              "recapture closeness and bring new memories [1]. "
              "What is one ritual you could start?")
    verdict = verifier.check(answer, passages)
    assert verdict.action == "ok"
    assert [c.kind for c in verdict.checks] == ["framing", "claim", "question"]


def test_an_opening_claim_dressed_as_framing_is_still_checked(verifier, retriever):
    passages = section_passages(retriever, "tip-3")
    verdict = verifier.check("Studies show 3 date nights a month prevent divorce [1].", passages)
    assert verdict.action == "replace"


def test_split_answer_keeps_lines_apart():
    text = "Hi there.\n- First point. Second point.\n- Third"
    assert [text[s:e] for s, e in split_answer(text)] == [
        "Hi there.", "- First point.", "Second point.", "- Third"]


def test_offline_quotes_check_is_exact(verifier):
    assert verifier.check_quotes(["Break the ice."]) == []
    assert verifier.check_quotes(["Break the ice!"]) == ["Break the ice!"]
