"""The LLM responder: an LCEL chain over any OpenAI-compatible endpoint.

condense the follow-up (with history) -> hybrid retrieval -> numbered passages prompt
-> streamed answer citing [n] -> [n] mapped back to section ids. Any failure of the
endpoint becomes an LLMError with one line saying what happened; callers fall back.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .config import Settings
from .data import read_toml
from .errors import LLMError, ReconnectError
from .respond import content_words, section_label, short_title
from .text import CITE_MARKER

# Earlier turns sent to the model, and how much of each: enough for "the second one"
# or "and if he says no?", small enough to stay well inside any model's context.
HISTORY_MESSAGES = 6
HISTORY_CHARS = 1500
# A standalone question is one sentence: this bounds a condense call that rambles.
CONDENSE_MAX_TOKENS = 80
CONDENSE_MAX_CHARS = 400
SITUATION_MAX_CHARS = 600


@cache
def load_prompts() -> dict[str, Any]:
    """Read the prompts shipped with the package."""
    return read_toml("prompts.toml")


def make_chat_model(settings: Settings, max_tokens: int | None = None) -> Any:
    """ChatOpenAI for the configured endpoint: streaming, bounded, with timeouts and retries."""
    from langchain_openai import ChatOpenAI

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    limit = max_tokens or settings.llm_max_tokens
    base = settings.openai_base_url or ""
    # The client sends the limit as `max_completion_tokens`; llama.cpp's and other local
    # servers read only the older `max_tokens`, so elsewhere than OpenAI both are sent.
    extra = None if not base or "api.openai.com" in base else {"max_tokens": limit}
    # Local servers (Ollama, llama.cpp, vLLM) take any key; the client insists on one.
    return ChatOpenAI(
        model=settings.llm_model,
        api_key=key or "not-needed",
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,  # the client's own backoff, on 429/5xx/drops
        temperature=settings.llm_temperature,
        max_tokens=limit,
        extra_body=extra,
        streaming=True,
    )


def describe_failure(exc: BaseException, *, started: bool = False) -> str:
    """One line on what went wrong with the endpoint: no key, no response body."""
    import openai

    if isinstance(exc, LLMError):
        return str(exc)
    if isinstance(exc, openai.BadRequestError):
        body = exc.body if isinstance(exc.body, dict) else {}
        code = str(body.get("code") or (body.get("error") or {}).get("code") or "")
        if "context" in code or "context length" in str(exc.message).lower():
            return "the conversation was too long for the model's context"
        return "the endpoint rejected the request (400)"
    if isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):
        return "the answer stream broke off" if started else "couldn't connect to the endpoint"
    if isinstance(exc, ValueError) and "generation" in str(exc).lower():
        return "the endpoint returned an empty answer"
    # In order: the specific HTTP statuses before the general one.
    known: list[tuple[Any, str]] = [
        (openai.AuthenticationError, "the endpoint refused the API key (401)"),
        (openai.PermissionDeniedError, "the endpoint refused access (403)"),
        (openai.RateLimitError,
         "the endpoint kept rate-limiting requests (429), even after retries"),
        (openai.NotFoundError, "the model or endpoint was not found (404)"),
        (openai.APITimeoutError, "the endpoint timed out"),
        (json.JSONDecodeError | UnicodeDecodeError,
         "the endpoint sent a reply that could not be read"),
    ]
    for kind, line in known:
        if isinstance(exc, kind):
            return line
    if isinstance(exc, openai.APIStatusError):
        return f"the endpoint had a server error ({exc.status_code})"
    return f"the endpoint failed ({type(exc).__name__})"


def format_passages(passages: Sequence[Any]) -> str:
    """Numbered passages for the prompt, one line each: [n] (label: title) text."""
    lines = []
    for n, p in enumerate(passages, 1):
        text = " ".join(p.chunk.text.split())
        label = f"{section_label(p.section_id)}: {short_title(p.section_title)}"
        lines.append(f"[{n}] ({label}) {text}")
    return "\n".join(lines)


def history_messages(history: Sequence[dict]) -> list[Any]:
    """The last turns as chat messages, each cut to a sane length."""
    from langchain_core.messages import AIMessage, HumanMessage

    out = []
    for h in list(history)[-HISTORY_MESSAGES:]:
        content = str(h.get("content", ""))[:HISTORY_CHARS]
        out.append(HumanMessage(content) if h.get("role") == "user" else AIMessage(content))
    return out


def history_text(history: Sequence[dict]) -> str:
    """The last turns as plain lines, for the condense prompt."""
    return "\n".join(
        f"{'Person' if h.get('role') == 'user' else 'Assistant'}: "
        f"{' '.join(str(h.get('content', ''))[:HISTORY_CHARS].split())}"
        for h in list(history)[-HISTORY_MESSAGES:]
    )


def render_markers(text: str, passages: Sequence[Any]) -> tuple[str, list[int]]:
    """Replace [n] with the section's label, '*(tip 4)*'; unknown numbers are removed."""
    cited: list[int] = []

    def sub(m: re.Match) -> str:
        labels = []
        for n in re.split(r"\s*[,;]\s*", m.group(1)):
            i = int(n)
            if 1 <= i <= len(passages):
                if i not in cited:
                    cited.append(i)
                label = section_label(passages[i - 1].section_id)
                if label not in labels:
                    labels.append(label)
        return f" *({', '.join(labels)})*" if labels else ""

    return CITE_MARKER.sub(sub, text), cited


class DeadlineError(LLMError):
    """The turn's deadline passed before the model finished."""


def sane_question(condensed: str | None, message: str, history: str) -> str:
    """The condensed question if it is one bounded question about this conversation.

    Otherwise the person's own message: a condense call that rambles, answers, echoes its
    instructions or drifts to another subject must not steer retrieval.
    """
    text = " ".join(str(condensed or "").split()).strip("\"“” ")
    text = re.sub(r"^(standalone question|question)\s*:\s*", "", text, flags=re.IGNORECASE)
    limit = min(CONDENSE_MAX_CHARS, len(message) + len(history))
    if not text or len(text) > limit or "\n" in str(condensed).strip():
        return message
    words = set(content_words(text))
    if not words & set(content_words(f"{message} {history}")):
        return message
    if "standalone" in text.lower() or "follow-up message" in text.lower():
        return message
    return text


def prompt_instructions(prompts: dict[str, Any], article_title: str,
                        route_note: str = "") -> str:
    """The prompt's own words (system and condense), without passages or the person's."""
    system = prompts["answer"]["system"].format(article_title=article_title,
                                                route_note=route_note, situation_note="",
                                                passages="")
    return "\n".join([system, prompts["condense"]["system"], prompts["condense"]["human"]])


def within_deadline(pieces: Iterable[Any], seconds: float) -> Iterator[Any]:
    """Yield from `pieces` (consumed on a worker thread) until `seconds` have passed.

    The model's client only times out the gap between chunks; this bounds the whole
    turn. Past the deadline an LLMError is raised and the worker stops at its next piece.
    """
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    done = object()

    def pump() -> None:
        it = iter(pieces)
        try:
            for piece in it:
                if stop.is_set():
                    break
                out.put(piece)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            out.put(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()  # ends the HTTP stream, so the server stops generating
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            out.put(done)

    end = time.monotonic() + seconds
    threading.Thread(target=pump, name="llm-stream", daemon=True).start()
    try:
        while True:
            try:
                item = out.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise DeadlineError(f"the model took longer than {seconds:.1f} s") from None
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class MarkerStream:
    """Rewrite [n] markers as they stream, holding back only an unfinished '[...'."""

    def __init__(self, passages: Sequence[Any]) -> None:
        self.passages = passages
        self._pending = ""

    def feed(self, piece: str) -> str:
        text = self._pending + piece
        cut = text.rfind("[")
        if cut >= 0 and "]" not in text[cut:] and len(text) - cut <= 12:
            self._pending, text = text[cut:], text[:cut]
        else:
            self._pending = ""
        # Hold trailing white space until we know whether a marker follows ("gently [1]").
        stripped = text.rstrip()
        if stripped != text:
            self._pending = text[len(stripped):] + self._pending
            text = stripped
        return render_markers(text, self.passages)[0]

    def flush(self) -> str:
        out, self._pending = render_markers(self._pending, self.passages)[0], ""
        return out


@dataclass
class LLMTurn:
    """What one LLM turn produced (filled in as the stream runs)."""

    question: str = ""
    passages: list[Any] = field(default_factory=list)
    answer: str = ""  # raw, with [n] markers
    first_token: float | None = None
    retrieve_ms: float = 0.0
    instructions: str = ""  # the prompt sent, less the passages and the person's words
    finish_reason: str | None = None  # "length" when the token limit cut the answer
    deadline_passed: bool = False


class LLMResponder:
    """The LCEL chain, built once; `run()` streams one turn and fills an LLMTurn."""

    def __init__(self, settings: Settings, retriever: Any, *, model: Any = None,
                 prompts: dict[str, Any] | None = None) -> None:
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
        from langchain_core.runnables import RunnableLambda

        self.settings = settings
        self.retriever = retriever
        self.model = model or make_chat_model(settings)
        condense_model = model or make_chat_model(settings, CONDENSE_MAX_TOKENS)
        self.prompts = prompts or load_prompts()
        p = self.prompts
        condense_prompt = ChatPromptTemplate.from_messages(
            [("system", p["condense"]["system"]), ("human", p["condense"]["human"])]
        )
        answer_prompt = ChatPromptTemplate.from_messages(
            [("system", p["answer"]["system"]), MessagesPlaceholder("history"),
             ("human", "{message}")]
        )
        titles = {a.slug: a.title for a in getattr(retriever, "articles", [])}
        self._article_title = next(iter(titles.values()), "the article")
        self.condense = condense_prompt | condense_model | StrOutputParser()
        # One chain; its stream is the answer's message chunks (their metadata says when
        # the token limit cut an answer). The steps before the answer are plain functions
        # (condense runs as its own sub-chain inside `_prepare`): an assign()/branch step
        # would pass the input through a thread pool on every turn, which measured ~10 ms
        # of the pipeline's overhead. Passages go to the LLMTurn.
        self.chain = RunnableLambda(self._prepare) | answer_prompt | self.model

    def start_condense(self, message: str, history: Sequence[dict], pool: Any) -> Any:
        """Begin condensing a follow-up on `pool`; `run(..., condensed=future)` collects it.

        The caller starts this only once the rules have cleared the message, so the
        round trip overlaps the turn's embedding and triage instead of following them.
        """
        inputs = {"message": message, "history": history_messages(history),
                  "history_text": history_text(history)}
        return pool.submit(self.condense.invoke, inputs)

    def _prepare(self, x: dict, config: Any = None) -> dict:
        """Condense a follow-up (an LLM call, only with history), retrieve, fill the prompt."""
        question = x["message"]
        if x.get("condensed") is not None:
            question = x["condensed"].result()
        elif x["history"]:
            question = self.condense.invoke(x, config)
        if x["history"]:
            question = sane_question(question, x["message"], x["history_text"])
        passages = self._retrieve({**x, "question": question})
        return self._answer_inputs({**x, "question": question, "passages": passages})

    def _retrieve(self, x: dict) -> list[Any]:
        t = time.perf_counter()
        question = " ".join(str(x["question"]).split()) or x["message"]
        emb = x["embedding"] if question == x["message"] else None
        passages = list(self.retriever.retrieve(question, embedding=emb))
        for sid in x.get("pin_sections", ()):
            if not any(p.section_id == sid for p in passages):
                passages.append(self._section_passage(sid, x))
        turn = x["_turn"]
        turn.question, turn.passages = question, passages
        turn.retrieve_ms = (time.perf_counter() - t) * 1000
        return passages

    def _section_passage(self, section_id: str, x: dict) -> Any:
        from .retrieval import Passage

        chunks = [c for c in self.retriever.chunks if c.section_id == section_id]
        return Passage(chunks[0], 0.0)

    def _answer_inputs(self, x: dict) -> dict:
        passages = x["passages"]
        note = ""
        if x.get("route") == "therapy":
            n = next((i for i, p in enumerate(passages, 1)
                      if p.section_id in x.get("pin_sections", ())), None)
            if n:
                note = self.prompts["answer"]["therapy_note"].format(therapy_n=n)
        situation = " ".join(str(x.get("situation") or "").split())[:SITUATION_MAX_CHARS]
        situation_note = (self.prompts["answer"]["situation_note"].format(situation=situation)
                          if situation else "")
        inputs = {
            "article_title": self._article_title,
            "route_note": note,
            "situation_note": situation_note,
            "passages": format_passages(passages),
            "history": x["history"],
            "message": x["message"],
        }
        x["_turn"].instructions = self.instructions(note)
        return inputs

    def instructions(self, route_note: str = "") -> str:
        """The prompt's own words (system and condense), without passages or the person's."""
        return prompt_instructions(self.prompts, self._article_title, route_note)

    def run(self, message: str, history: Sequence[dict], *, route: str,
            embedding: Sequence[float] | None = None,
            pin_sections: Sequence[str] = (), turn: LLMTurn | None = None,
            condensed: Any = None, situation: str | None = None,
            deadline: float | None = None) -> Iterator[str]:
        """Stream the answer's raw text pieces; `turn` holds passages and timings.

        `situation` is a short summary of what the person has told so far: the model may
        reflect it, never use it as a source. `deadline` (seconds) bounds the whole call.
        """
        turn = turn or LLMTurn()
        inputs = {
            "message": message,
            "history": history_messages(history),
            "history_text": history_text(history),
            "embedding": embedding,
            "route": route,
            "pin_sections": tuple(pin_sections),
            "condensed": condensed,
            "situation": situation,
            "_turn": turn,
        }
        chunks: Iterable[Any] = self.chain.stream(inputs)
        if deadline is not None:
            chunks = within_deadline(chunks, deadline)
        try:
            for chunk in chunks:
                finish = (getattr(chunk, "response_metadata", None) or {}).get("finish_reason")
                if finish:
                    turn.finish_reason = finish
                piece = chunk.content if hasattr(chunk, "content") else str(chunk)
                if isinstance(piece, str) and piece:
                    if turn.first_token is None:
                        turn.first_token = time.perf_counter()
                    turn.answer += piece
                    yield piece
        except DeadlineError:
            turn.deadline_passed = True
            raise
        except ReconnectError:
            raise
        except Exception as exc:  # noqa: BLE001 - every endpoint failure becomes a fallback
            raise LLMError(describe_failure(exc, started=turn.first_token is not None)) from exc
        if not turn.answer.strip():
            raise LLMError("the endpoint returned an empty answer")


__all__ = [
    "DeadlineError",
    "LLMResponder",
    "LLMTurn",
    "MarkerStream",
    "describe_failure",
    "format_passages",
    "history_messages",
    "history_text",
    "load_prompts",
    "make_chat_model",
    "prompt_instructions",
    "render_markers",
    "sane_question",
    "within_deadline",
]
