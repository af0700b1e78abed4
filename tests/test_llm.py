"""The LLM path end to end against a real OpenAI-compatible HTTP server on loopback.

The real `openai` client and langchain-openai do the talking (retries, timeouts, SSE);
the server is scripted per test. Every failure must give the offline reply, one notice
line, and never a traceback or the API key.
"""

from __future__ import annotations

import socket
import time

import pytest

from assistant.assistant import Final, Reply
from assistant.llm import MarkerStream, render_markers, sane_question
from assistant.respond import short_title
from assistant.testing.fake_openai import (
    BrokenStream,
    ContextTooLong,
    EmptyReply,
    Garbage,
    Hang,
    Status,
    grounded_answer,
)
from assistant.testing.fake_openai import Reply as Say
from tests.answer_helpers import (  # noqa: F401 - fixtures
    CORPUS_TEXT,
    SECRET_KEY,
    TIP_PHRASES,
    fake_openai_fixture,
    llm_assistant_fixture,
    make_llm_assistant,
    offline_assistant_fixture,
)

pytestmark = pytest.mark.server

QUESTION = "we barely talk anymore, it feels like we're roommates"


def run(assistant, message=QUESTION, history=None) -> tuple[list[str], Reply, list[float]]:
    pieces, stamps, reply = [], [], None
    for event in assistant.stream(message, history):
        if isinstance(event, Final):
            reply = event.reply
        else:
            pieces.append(event.text)
            stamps.append(time.perf_counter())
    assert reply is not None
    return pieces, reply, stamps


def test_shows_a_grounded_answer_once_checked_with_citations_mapped_to_sections(
    llm_assistant, fake_openai
):
    fake_openai.default = lambda body: Say(grounded_answer(body), token_delay=0.002)
    pieces, reply, _ = run(llm_assistant)
    assert reply.mode == "llm" and reply.route == "advice"
    assert pieces == [reply.text]  # the checked answer, shown once
    assert reply.verification is None and reply.notice is None
    # [n] became the section's label, and each citation is a section that was in the prompt.
    assert "[1]" not in reply.text and "*(" in reply.text
    prompt = fake_openai.requests[-1].body["messages"][0]["content"]
    assert reply.citations
    for c in reply.citations:
        assert short_title(c.section_title) in prompt
        assert c.quote in CORPUS_TEXT
    # The request: rules and numbered passages in the system message, the person's words
    # alone in the last message, the key sent as a bearer token.
    msgs = fake_openai.requests[-1].body["messages"]
    assert "only from the numbered passages" in msgs[0]["content"]
    assert "[1] (" in msgs[0]["content"]
    assert msgs[-1] == {"role": "user", "content": QUESTION}
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert fake_openai.requests[-1].stream
    # The answer is bounded: llama.cpp reads max_tokens, OpenAI max_completion_tokens.
    body = fake_openai.requests[-1].body
    assert body["max_tokens"] == body["max_completion_tokens"] == 400


def test_nothing_is_shown_before_the_whole_answer_is_checked(llm_assistant, fake_openai):
    fake_openai.default = lambda body: Say(grounded_answer(body), first_token_delay=0.05,
                                           token_delay=0.02)
    _, reply, stamps = run(llm_assistant)
    seen = fake_openai.requests[-1]
    assert reply.mode == "llm"
    assert stamps[0] >= seen.finished  # no draft streamed while the model was writing


def test_follow_up_is_condensed_with_history_then_answered(llm_assistant, fake_openai):
    history = [
        {"role": "user", "content": "I want to tell him I feel far apart from him lately"},
        {"role": "assistant", "content": "That takes courage. *(tip 4)*", "route": "advice"},
    ]
    fake_openai.enqueue(Say("How do I tell my partner I feel far apart if he says no?"))
    fake_openai.default = lambda body: Say(grounded_answer(body))
    _, reply, _ = run(llm_assistant, "and if he says no?", history)
    assert reply.mode == "llm"
    condense, answer = fake_openai.requests
    condense_text = " ".join(m["content"] for m in condense.body["messages"])
    assert "far apart from him lately" in condense_text and "and if he says no?" in condense_text
    roles = [m["role"] for m in answer.body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]  # history, then the new message


def test_rate_limit_is_retried_with_backoff_then_succeeds(llm_assistant, fake_openai):
    fake_openai.enqueue(Status(429, retry_after_ms=20))
    fake_openai.default = lambda body: Say(grounded_answer(body))
    _, reply, _ = run(llm_assistant)
    assert reply.mode == "llm"
    assert [r.action for r in fake_openai.requests] == ["Status", "Reply"]


FAILURES = {
    "401": (lambda: [Status(401, "Incorrect API key provided: sk-te***4f9a")], "401"),
    "429 every time": (lambda: [Status(429)] * 3, "429"),
    "500": (lambda: [Status(500)] * 3, "500"),
    "503": (lambda: [Status(503)] * 3, "503"),
    "hang": (lambda: [Hang(5)] * 3, "timed out"),
    "garbage stream": (lambda: [Garbage()] * 3, "could not be read"),
    "empty stream": (lambda: [EmptyReply()] * 3, "empty"),
    "broken stream": (lambda: [BrokenStream()] * 3, "broke off"),
    "context too long": (lambda: [ContextTooLong()], "too long"),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_every_endpoint_failure_gives_the_offline_reply_and_one_notice(
    name, llm_assistant, offline_assistant, fake_openai
):
    script, reason = FAILURES[name]
    fake_openai.enqueue(*script())
    pieces, reply, _ = run(llm_assistant)
    offline = offline_assistant.respond(QUESTION)
    assert reply.mode == "fallback"
    assert reply.text == offline.text  # the grounded offline reply, word for word
    assert reply.citations == offline.citations
    assert reply.notice and "\n" not in reply.notice and reason in reply.notice
    assert "offline answer" in reply.notice
    assert pieces == [reply.text]  # no partial text, nothing shown twice
    everything = "".join(pieces) + repr(reply.to_dict())
    assert SECRET_KEY not in everything and "4f9a" not in everything
    assert "Traceback" not in everything


def test_retries_are_bounded(llm_assistant, fake_openai):
    fake_openai.default = Status(500)
    _, reply, _ = run(llm_assistant)
    assert reply.mode == "fallback"
    assert len(fake_openai.requests) == 3  # the first try and llm_max_retries=2


def test_connection_refused_falls_back(offline_assistant, retriever):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    a = make_llm_assistant(f"http://127.0.0.1:{port}/v1", offline_assistant, retriever,
                           llm_max_retries=0)
    _, reply, _ = run(a)
    assert reply.mode == "fallback"
    assert "couldn't connect" in reply.notice


def test_crisis_never_waits_on_the_llm(llm_assistant, fake_openai):
    fake_openai.default = Hang(30)  # a request would hang the turn: none may be sent
    _, reply, _ = run(llm_assistant, "I want to end my life, nothing matters anymore")
    assert reply.route == "crisis" and fake_openai.requests == []
    assert "988" in reply.text
    assert not any(p in reply.text for p in TIP_PHRASES)


def test_planted_unsupported_sentence_is_removed_and_reply_says_so(llm_assistant, fake_openai):
    planted = "Studies show that couples who argue less than once a month are twice as likely " \
              "to stay together."
    fake_openai.default = lambda body: Say(grounded_answer(body, plant=planted))
    pieces, reply, _ = run(llm_assistant)
    assert "argue less than once a month" not in "".join(pieces)  # never shown, even briefly
    assert "argue less than once a month" not in reply.text
    assert reply.mode == "llm"
    assert reply.verification == ("repaired: shortened: removed 1 sentence the article "
                                  "doesn't support")


# Holes a real small model found (issue 12), each fed through the real client end to end.
HOLES = {
    "invented diagnosis as framing": (
        "It sounds like your husband has a phone addiction and is probably depressed. ",
        "phone addiction"),
    "a forecast as framing": (
        "It sounds hard, and most couples who feel it end up separating within a year unless "
        "they get help. ", "separating"),
    "an echo of the system prompt": (
        "You answer only from the numbered passages of the article given below. "
        "Use only what the passages say.\n", "numbered passages"),
    "a statistic in another script": ("90% пар расходятся в течение года. ", "90%"),
    "a question that asserts": (
        "Did you know couples who skip date night are twice as likely to divorce? ",
        "twice as likely"),
    "template tokens": ("<|im_start|>assistant\n", "im_start"),
}


@pytest.mark.parametrize("name", list(HOLES))
def test_what_a_weak_model_slips_in_is_never_shown(name, llm_assistant, fake_openai):
    opening, marker = HOLES[name]
    fake_openai.default = lambda body: Say(opening + grounded_answer(body))
    pieces, reply, _ = run(llm_assistant)
    assert marker not in reply.text and marker not in "".join(pieces)
    assert pieces == [reply.text]
    assert reply.mode in ("llm", "fallback")
    assert reply.verification  # the person is told the answer was changed


def test_a_looping_answer_is_replaced_not_shown(llm_assistant, offline_assistant, fake_openai):
    fake_openai.default = lambda body: Say(" ".join([grounded_answer(body)] * 8))
    pieces, reply, _ = run(llm_assistant)
    assert reply.mode == "fallback" and reply.verification.startswith("replaced")
    assert pieces == [offline_assistant.respond(QUESTION).text]


def test_an_answer_cut_at_the_token_limit_ends_on_a_whole_sentence(
    offline_assistant, retriever, fake_openai
):
    a = make_llm_assistant(fake_openai.base_url, offline_assistant, retriever,
                           llm_max_tokens=40)
    fake_openai.default = lambda body: Say(grounded_answer(body))
    _, reply, _ = run(a)
    assert fake_openai.requests[-1].body["max_tokens"] == 40
    assert reply.mode == "llm"
    assert reply.text.rstrip().endswith((".", "?", "*"))
    assert "unfinished last sentence" in reply.verification


def test_past_the_turn_deadline_the_offline_answer_follows(
    offline_assistant, retriever, fake_openai
):
    a = make_llm_assistant(fake_openai.base_url, offline_assistant, retriever,
                           llm_deadline=1.5)
    # A slow model: a piece every 0.2 s, well inside the client's 1 s gap timeout, for
    # about 14 s in all.
    fake_openai.default = lambda body: Say(grounded_answer(body), token_delay=0.2)
    pieces, reply, _ = run(a)
    assert reply.mode == "fallback"
    assert reply.notice.startswith("The language model took longer than 1.5 s")
    assert pieces == [offline_assistant.respond(QUESTION).text]
    # The turn gave up on the stream: the server was still sending it (a 14 s answer).
    assert fake_openai.requests[-1].finished is None


def test_the_condensed_question_is_bounded_and_about_the_conversation():
    history = "Person: I want to tell him I feel far apart from him lately"
    msg = "and if he says no?"
    good = "How do I tell my partner I feel far apart if he says no?"
    assert sane_question(good, msg, history) == good
    assert sane_question("Standalone question: " + good, msg, history) == good
    assert sane_question("far apart " * 400, msg, history) == msg  # longer than the talk
    assert sane_question("What is the capital of France?", msg, history) == msg
    assert sane_question("", msg, history) == msg


def test_a_rambling_condense_does_not_steer_retrieval(llm_assistant, fake_openai, retriever):
    history = [
        {"role": "user", "content": "I want to tell him I feel far apart from him lately"},
        {"role": "assistant", "content": "That takes courage. *(tip 4)*", "route": "advice"},
    ]
    fake_openai.enqueue(Say("Here is a long answer about budgets and savings. " * 200))
    fake_openai.default = lambda body: Say(grounded_answer(body))
    _, reply, _ = run(llm_assistant, "and if he says no?", history)
    assert reply.mode == "llm"
    assert fake_openai.requests[0].body["max_tokens"] == 80  # the condense call is bounded
    # Retrieval ran on the person's own message, not on the 9,000-character ramble.
    own = [p.section_id for p in retriever.retrieve("and if he says no?")]
    assert reply.retrieved == list(dict.fromkeys(own))


def test_the_cli_prints_the_answer_once_even_after_a_mid_stream_failure(
    llm_assistant, fake_openai
):
    import io

    from assistant.cli.chat_cmds import stream_reply

    fake_openai.enqueue(*[BrokenStream("It sounds like he is probably depressed and")] * 3)
    out = io.StringIO()
    reply = stream_reply(llm_assistant, QUESTION, [], None, out)
    assert reply.mode == "fallback"
    printed = " ".join(out.getvalue().split())  # the CLI wraps lines to the terminal
    first = " ".join(reply.text.split(". ")[0].split())
    assert printed.count(first) == 1  # the answer once: no partial draft, no second copy
    assert "depressed" not in printed


def test_an_answer_citing_passages_that_do_not_exist_is_replaced(
    llm_assistant, offline_assistant, fake_openai
):
    fake_openai.default = Say("Couples should schedule a monthly budget meeting [9]. "
                              "Sharing passwords builds trust [8].")
    _, reply, _ = run(llm_assistant)
    assert reply.mode == "fallback"
    assert reply.verification.startswith("replaced by the offline reply")
    assert reply.text == offline_assistant.respond(QUESTION).text
    assert "budget" not in reply.text


def test_abuse_disclosed_earlier_keeps_the_llm_out(llm_assistant, fake_openai):
    history = [
        {"role": "user", "content": "he hit me last night and says it's my fault for nagging"},
        {"role": "assistant", "content": "(abuse reply)", "route": "abuse"},
    ]
    fake_openai.default = lambda body: Say(grounded_answer(body))
    _, reply, _ = run(llm_assistant, "how can I make him feel loved again?", history)
    assert fake_openai.requests == []
    assert reply.sticky_route == "abuse" and reply.mode == "offline"
    assert "1-800-799-7233" in reply.text
    assert not any(p in reply.text for p in ("Begin with yourself", "Be loving in little ways",
                                             "couples therapy can be"))


def test_markers_are_rewritten_even_when_split_across_pieces(retriever):
    from assistant.retrieval import Passage

    passages = [Passage(c, 1.0) for c in retriever.chunks if c.section_id in ("tip-4", "tip-3")]
    passages = [next(p for p in passages if p.section_id == "tip-4"),
                next(p for p in passages if p.section_id == "tip-3")]
    ms = MarkerStream(passages)
    out = "".join(ms.feed(x) for x in ["Say it gently ", "[", "1", "]. Then walk [2", "]."])
    out += ms.flush()
    assert out == "Say it gently *(tip 4)*. Then walk *(tip 3)*."
    text, cited = render_markers("A [1, 2]. B [5].", passages)
    assert text == "A *(tip 4, tip 3)*. B." and cited == [1, 2]


def test_a_follow_up_is_condensed_while_the_turn_is_triaged(llm_assistant, fake_openai):
    """The condense call starts before triage finishes; the turn still uses its result."""
    history = [
        {"role": "user", "content": "we never do anything fun anymore"},
        {"role": "assistant", "content": "Quality time helps. *(tip 3)*", "route": "advice"},
    ]
    seen_by_triage = []
    classify = llm_assistant.triage.classify

    def slow_classify(message, hist=None, *, embedding=None):
        # Triage waits (up to 30 s) for the condense request, which arrives only if it
        # was sent before triage finished: an order check, not a speed check.
        deadline = time.monotonic() + 30
        while not fake_openai.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_by_triage.append(len(fake_openai.requests))
        return classify(message, hist, embedding=embedding)

    fake_openai.enqueue(Say("What fun things can we do together as a couple?"))
    fake_openai.default = lambda body: Say(grounded_answer(body))
    llm_assistant.triage.classify = slow_classify
    try:
        _, reply, _ = run(llm_assistant, "like what?", history)
    finally:
        llm_assistant.triage.classify = classify
    assert seen_by_triage == [1], "the condense request was sent before triage finished"
    assert reply.mode == "llm"
    condense, answer = fake_openai.requests
    assert "like what?" in " ".join(m["content"] for m in condense.body["messages"])


def test_a_follow_up_the_rules_call_unsafe_is_never_sent(llm_assistant, fake_openai):
    history = [
        {"role": "user", "content": "we never do anything fun anymore"},
        {"role": "assistant", "content": "Quality time helps. *(tip 3)*", "route": "advice"},
    ]
    fake_openai.default = Hang(30)  # a request would hang the turn: none may be sent
    _, reply, _ = run(llm_assistant, "I want to end my life, nothing matters anymore", history)
    assert reply.route == "crisis" and fake_openai.requests == []
