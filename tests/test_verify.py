"""Verification: citations name retrieved passages, quotes are verbatim, every sentence checked."""

from __future__ import annotations

import json

import pytest

from assistant.llm import load_prompts, prompt_instructions
from assistant.respond import SentenceBank
from assistant.retrieval import Passage
from assistant.verify import LOST_SHARE, Verifier, split_answer
from tests.answer_helpers import REPO

ARTICLE = "Feeling Disconnected From Your Partner? Six Ways to Reconnect"
PROMPT = prompt_instructions(load_prompts(), ARTICLE)  # what the responder sends
TIP3 = ("Even small rituals, such as weekly date nights or cooking dinner together, can "
        "recapture closeness and bring new memories")


@pytest.fixture(scope="module")
def verifier(retriever):
    bank = SentenceBank(retriever.articles, retriever.embedder)
    return Verifier(bank, retriever.embedder)


def section_passages(retriever, *section_ids: str) -> list[Passage]:
    return [Passage(c, 1.0) for sid in section_ids for c in retriever.chunks
            if c.section_id == sid]


def shown(verdict) -> list[str]:
    return [c.text for c in verdict.checks if c.ok]


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


def test_a_planted_sentence_is_dropped_and_the_note_says_so_plainly(verifier, retriever):
    passages = section_passages(retriever, "tip-4", "tip-3")
    answer = (
        "That sounds lonely. "
        "Even saying, “I’ve been feeling a bit far apart lately,” can lead to greater "
        "connection [1]. "
        "Research shows that 70 percent of couples stop talking after their first child [1]. "
        f"{TIP3} [2]. "
        "Could you try saying that this week?"
    )
    verdict = verifier.check(answer, passages, message="I feel lonely, we barely talk")
    assert verdict.action == "repaired"
    assert "70 percent" not in verdict.text
    assert "far apart lately" in verdict.text and "cooking dinner" in verdict.text
    assert verdict.summary() == ("repaired: shortened: removed 1 sentence the article "
                                 "doesn't support")
    assert verdict.text.endswith("Could you try saying that this week?")


def test_a_verbatim_sentence_cited_to_a_missing_passage_is_re_cited(verifier, retriever):
    passages = section_passages(retriever, "tip-2")
    answer = ("It is the little things, not big gestures, that sustain a relationship [1]. "
              "Great big romantic gestures are wonderful, but it is the little things that "
              "sustain a relationship [7].")
    verdict = verifier.check(answer, passages)
    assert verdict.bad_citations == [7]
    assert [c.ok for c in verdict.checks] == [True, True]
    assert verdict.checks[1].recited == 1
    assert "[7]" not in verdict.text and verdict.text.endswith("relationship [1].")
    assert "re-cited" in verdict.summary()


def test_a_verbatim_sentence_cited_to_the_wrong_passage_moves_to_its_own(verifier, retriever):
    passages = section_passages(retriever, "tip-4", "tip-3")
    verdict = verifier.check(f"{TIP3} [1].", passages)
    assert verdict.checks[0].ok and verdict.checks[0].recited == 2
    assert verdict.text == f"{TIP3} [2]."


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
    assert verdict.summary().startswith("replaced by the offline reply")


def test_framing_and_questions_may_reflect_the_persons_words(verifier, retriever):
    passages = section_passages(retriever, "tip-3")
    answer = ("It sounds like you two have been running on empty. "
              f"{TIP3} [1]. "
              "What is one ritual you could start?")
    verdict = verifier.check(answer, passages, message="we're running on empty, no time")
    assert verdict.action == "ok"
    assert [c.kind for c in verdict.checks] == ["framing", "claim", "question"]


def test_framing_with_words_nobody_used_fails(verifier, retriever):
    passages = section_passages(retriever, "tip-3")
    answer = f"It sounds like your jobs in finance are draining you. {TIP3} [1]."
    verdict = verifier.check(answer, passages, message="we never have time together")
    assert not verdict.checks[0].ok and "finance" not in verdict.text


@pytest.mark.parametrize("framing", [
    "It sounds like your husband has a phone addiction and is probably depressed.",
    "It sounds hard, and most couples who feel it end up separating within a year unless "
    "they get help.",
    "It sounds like he is a narcissist.",
    "That sounds lonely; 80% of couples feel this way.",
])
def test_diagnoses_statistics_and_forecasts_never_pass_as_framing(verifier, retriever, framing):
    passages = section_passages(retriever, "tip-4", "tip-3")
    message = "my husband is always on his phone and we barely talk, it feels lonely"
    verdict = verifier.check(f"{framing} {TIP3} [2].", passages, message=message)
    assert not verdict.checks[0].ok, verdict.checks[0]
    assert framing not in verdict.text


@pytest.mark.parametrize("sentence", [
    "90% пар расходятся в течение года [1].",  # a statistic in Russian
    "Пары, которые не разговаривают, обычно расстаются [1].",  # no figure, still a claim
    "Did you know couples who skip date night are twice as likely to divorce?",
    "Isn't it true that most marriages fail after 7 years?",
    "90%",
    "Studies show 3 date nights a month prevent divorce [1].",
])
def test_every_sentence_is_checked_whatever_its_script_or_punctuation(
    verifier, retriever, sentence
):
    passages = section_passages(retriever, "tip-3")
    verdict = verifier.check(f"{TIP3} [1].\n{sentence}\nWhat could you try?", passages,
                             message="we never do anything together")
    assert sentence not in verdict.text
    assert not any(c.ok for c in verdict.checks if c.text == sentence)


def test_empty_list_items_go_and_the_list_is_renumbered(verifier, retriever):
    passages = section_passages(retriever, "tip-3", "tip-2")
    tip2 = "It is the little things, not big gestures, that sustain a relationship"
    answer = (f"Two things it suggests:\n1. {TIP3} [1].\n"
              "2. Couples who meditate together argue 40% less [1].\n"
              f"3. {tip2} [2].\n4.\n5.")
    verdict = verifier.check(answer, passages)
    assert verdict.action == "repaired"
    assert verdict.text.splitlines() == ["Two things it suggests:", f"1. {TIP3} [1].",
                                         f"2. {tip2} [2]."]


def test_repeated_sentences_count_once_and_a_loop_is_replaced(verifier, retriever):
    passages = section_passages(retriever, "tip-3")
    twice = verifier.check(f"{TIP3} [1]. {TIP3} [1]. What could you try this week?",
                           passages)
    assert twice.text.count("cooking dinner") == 1
    assert [c.kind for c in twice.checks][:2] == ["claim", "repeat"]
    loop = verifier.check(" ".join([f"{TIP3} [1]."] * 20), passages)
    assert loop.action == "replace" and loop.lost_words > LOST_SHARE


def test_a_truncated_ending_is_cut_back_to_the_last_whole_sentence(verifier, retriever):
    passages = section_passages(retriever, "tip-3", "tip-2")
    answer = (f"{TIP3} [1]. It is the little things, not big gestures, that sustain a "
              "relationship [2]. Even small")
    verdict = verifier.check(answer, passages, truncated=True)
    assert verdict.text.endswith("relationship [2].")
    assert verdict.checks[-1].kind == "truncated"
    assert "unfinished last sentence" in verdict.summary()


def test_echoes_of_the_prompt_are_removed_before_checking(verifier, retriever):
    passages = section_passages(retriever, "tip-3", "tip-2")
    answer = (
        "<start_of_turn>model\n"
        f"{TIP3} [1].\n"
        "It is the little things, not big gestures, that sustain a relationship [2].\n"
        "Use only what the passages say.\n"
        "What is one ritual you could start?"
    )
    verdict = verifier.check(answer, passages, prompt=PROMPT)
    assert [c.kind for c in verdict.echoes] == ["token", "echo"]
    assert "passages" not in verdict.text.lower() and "start_of_turn" not in verdict.text
    assert verdict.action == "repaired"
    assert "instructions" in verdict.summary()


def test_an_answer_that_is_mostly_prompt_is_replaced(verifier, retriever):
    passages = section_passages(retriever, "tip-3")
    answer = (
        f'You answer only from the numbered passages of the article "{ARTICLE}" given below.\n'
        "Rules. These rules come from the people who built this assistant.\n"
        "1. Use only what the passages say.\n"
        "2. After every sentence that uses a passage, cite it by number in square brackets.\n"
        "3. When you quote the article, copy its words exactly, inside double quotes.\n"
        f"Passages: *(introduction)* {TIP3} [1].\n"
        f"{TIP3} [1]."
    )
    verdict = verifier.check(answer, passages, prompt=PROMPT)
    assert verdict.action == "replace"
    assert verdict.lost_words > LOST_SHARE


def test_split_answer_keeps_lines_apart_and_reads_every_script():
    text = "Hi there.\n- First point. Second point.\n- Third\nПривет. Как дела? 你好。好"
    assert [text[s:e] for s, e in split_answer(text)] == [
        "Hi there.", "- First point.", "Second point.", "- Third", "Привет.", "Как дела?",
        "你好。", "好"]


def test_offline_quotes_check_is_exact(verifier):
    assert verifier.check_quotes(["Break the ice."]) == []
    assert verifier.check_quotes(["Break the ice!"]) == ["Break the ice!"]
