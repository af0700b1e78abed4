"""The seams of `Assistant`: what it needs from the embedder, triage, retriever and LLM.

Structural types (`typing.Protocol`): the real parts satisfy them without inheriting, and
so do test doubles such as a scripted triage, which mypy then checks like the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .corpus import Article
    from .llm import LLMTurn
    from .retrieval import Passage


class QueryEmbedder(Protocol):
    """Turns text into vectors: one query at a time (cached), or passages in a batch."""

    def embed_query(self, text: str) -> list[float]: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


class TriageVerdict(Protocol):
    """The route of one message, with how sure the triage is and why."""

    @property
    def route(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    @property
    def reasons(self) -> list[str]: ...

    @property
    def sticky_route(self) -> str | None: ...

    @property
    def flags(self) -> tuple[str, ...]: ...


class Triager(Protocol):
    """Routes a message (crisis, abuse, therapy, advice, off_topic) before anything else."""

    def classify(self, message: str, history: Sequence[str] | None = None, *,
                 embedding: Sequence[float] | None = None) -> TriageVerdict: ...

    def rules_route(self, message: str) -> str: ...


class PassageRetriever(Protocol):
    """Finds the article passages for a question."""

    @property
    def embedder(self) -> QueryEmbedder: ...

    @property
    def articles(self) -> list[Article]: ...

    def retrieve(self, query: str, k: int | None = None, *,
                 embedding: Sequence[float] | None = None) -> list[Passage]: ...


class LLMResponder(Protocol):
    """Writes an answer with a language model, streamed, from retrieved passages."""

    def start_condense(self, message: str, history: Sequence[dict[str, Any]],
                       pool: Executor) -> Future[str]: ...

    def run(self, message: str, history: Sequence[dict[str, Any]], *, route: str,
            embedding: Sequence[float] | None = None,
            pin_sections: Sequence[str] = (), turn: LLMTurn | None = None,
            condensed: Any = None, situation: str | None = None,
            deadline: float | None = None) -> Iterator[str]: ...


__all__ = ["LLMResponder", "PassageRetriever", "QueryEmbedder", "TriageVerdict", "Triager"]
