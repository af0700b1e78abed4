"""Retrieval: dense search (Chroma), optionally fused with BM25 (bm25s); a LangChain retriever."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import bm25s
import Stemmer
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import PrivateAttr

from .config import Settings
from .corpus import Article, Chunk
from .errors import QueryError
from .index import Embedder, IndexState, VectorIndex, load_embedder

Mode = Literal["hybrid", "dense", "lexical"]
# Dense is the default: fusing BM25 in changed the rank of 1 of 25 held-out questions (a rank
# 5 became 4) and 2 of 77 tuned ones, MRR +0.002 with a 95% bootstrap interval touching zero:
# noise, not a win (`python -m evals retrieval`; README, "Retrieval"). Hybrid and lexical
# stay available (`assistant search --mode`) for corpora where exact words matter more.
DEFAULT_MODE: Mode = "dense"

# Reciprocal-rank fusion: score = sum(weight / (RRF_K + rank)). Dense carries paraphrases,
# which is how people ask; BM25 rescues rare exact words (names, "therapist", "massage").
RRF_K = 2
DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 0.25
# A chunk's dense score blends its own similarity with its section's two best search keys
# (measured on evals/data: the mean of two keys is steadier than the single best one).
CHUNK_SHARE = 0.15
TOP_KEYS = 2
DENSE_CANDIDATES = 200
# Okapi BM25 with Lucene's idf; k1 a little under the usual 1.5 since chunks are short.
BM25_K1 = 1.2
BM25_B = 0.75

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves im ive dont doesnt didnt cant wont isnt arent wasnt id ill youre hes shes
    theyre weve its thats whats really just like get got also even still""".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# A PyStemmer object keeps a cache and is not safe to share between threads (the page serves
# several sessions at once), so each thread gets its own.
_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def stem(word: str) -> str:
    """Reduce a word to its Snowball (Porter 2) stem: 'talking' -> 'talk'."""
    return str(_stemmer().stemWord(word.lower().replace("'", "")))


def tokenize(text: str) -> list[str]:
    """Split text into stemmed words, without stopwords or one-letter words."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    kept = [w.replace("'", "") for w in words if w not in STOPWORDS and len(w) > 1]
    return list(_stemmer().stemWords(kept))


class Lexical:
    """BM25 scores for every document, from bm25s over stemmed words."""

    def __init__(self, docs: Sequence[str]) -> None:
        self._n = len(docs)
        self._bm25 = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
        self._bm25.index([tokenize(d) for d in docs], show_progress=False)
        self._vocab: dict[str, int] = self._bm25.vocab_dict

    def scores(self, query: str) -> list[float]:
        """One score per document, in the order they were given (0 where no word matches)."""
        terms = [t for t in tokenize(query) if t in self._vocab]
        if not terms:  # bm25s needs at least one known word
            return [0.0] * self._n
        return [float(s) for s in self._bm25.get_scores(terms)]


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with its fused score and the ranks that produced it."""

    chunk: Chunk
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    similarity: float | None = None  # cosine similarity to the query, when dense ran

    @property
    def section_id(self) -> str:
        return self.chunk.section_id

    @property
    def section_title(self) -> str:
        return self.chunk.section_title

    @property
    def text(self) -> str:
        return self.chunk.text

    def to_dict(self) -> dict[str, object]:
        """The `assistant search --json` shape."""
        c = self.chunk
        return {
            "section_id": c.section_id,
            "section_title": c.section_title,
            "article": c.article,
            "chunk_id": c.chunk_id,
            "position": c.position,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "score": round(self.score, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "dense_rank": self.dense_rank,
            "lexical_rank": self.lexical_rank,
        }

    def to_document(self) -> Document:
        """The passage as a LangChain Document: the chunk's text, the rest as metadata."""
        meta = self.to_dict()
        meta.pop("text")
        return Document(page_content=self.text, metadata=meta, id=self.chunk.chunk_id)


class Retriever(BaseRetriever):
    """Dense + BM25 over the indexed chunks, fused, with near-duplicates held back.

    A LangChain retriever, so `retriever.invoke(question)` gives Documents and LCEL chains
    compose with it; the product itself calls `retrieve()`, which returns `Passage`s.
    """

    index: VectorIndex
    state: IndexState
    top_k: int = 4
    mode: Mode = DEFAULT_MODE

    _chunks: list[Chunk] = PrivateAttr(default_factory=list)
    _by_id: dict[str, Chunk] = PrivateAttr(default_factory=dict)
    _has_keys: dict[str, bool] = PrivateAttr(default_factory=dict)
    _lex_owner: list[str | tuple[str, str]] = PrivateAttr(default_factory=list)
    _lexical: Lexical | None = PrivateAttr(default=None)
    _n_records: int = PrivateAttr(default=0)
    _key_section: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)

    def __init__(self, index: VectorIndex, state: IndexState, top_k: int = 4,
                 mode: Mode = DEFAULT_MODE, **kwargs: Any) -> None:
        super().__init__(index=index, state=state, top_k=top_k, mode=mode, **kwargs)

    def model_post_init(self, context: Any, /) -> None:
        """Read the chunks back from the store and index their words."""
        super().model_post_init(context)
        self._chunks = self.index.indexed_chunks()
        self._by_id = {c.chunk_id: c for c in self._chunks}
        keys = {a.slug: a.keys for a in self.articles}
        self._has_keys = {
            c.chunk_id: bool(keys.get(c.article, {}).get(c.section_id)) for c in self._chunks
        }
        # Lexical documents: each chunk (with its title), and each search key on its own,
        # so a short key that shares two words with the question is not diluted.
        self._lex_owner = [c.chunk_id for c in self._chunks]
        lex_docs = [c.embedding_text() for c in self._chunks]
        for a in self.articles:
            for sid, ks in a.keys.items():
                self._lex_owner += [(a.slug, sid)] * len(ks)
                lex_docs += list(ks)
        self._lexical = Lexical(lex_docs)
        self._n_records = self.index.size()
        # Which section each search key points at (ids come back from Chroma without metadata).
        self._key_section = {
            rid: (str(meta["article"]), str(meta["section_id"]))
            for rid, _text, _doc, meta in self.index.records() if meta["kind"] == "key"
        }

    @property
    def embedder(self) -> Embedder:
        return self.index.embedder

    @property
    def articles(self) -> list[Article]:
        return self.index.articles

    @property
    def chunks(self) -> list[Chunk]:
        return self._chunks

    def embed_query(self, text: str) -> list[float]:
        """Embed a question (cached: a turn embeds its message once)."""
        return self.embedder.embed_query(text)

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        *,
        embedding: Sequence[float] | None = None,
        mode: Mode | None = None,
    ) -> list[Passage]:
        """Rank chunks for a query; pass `embedding` when the turn already computed it."""
        if not query or not query.strip():
            raise QueryError("The question is empty: type what's on your mind.")
        mode = mode or self.mode
        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("hybrid", "dense"):
            vec = embedding if embedding is not None else self.embed_query(query)
            dense = self._dense(vec)
        if mode in ("hybrid", "lexical"):
            lexical = self._lexical_ranking(query)
        return diversify(self._fuse(dense, lexical), k or self.top_k)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        """Retrieve for LangChain: the top passages as Documents."""
        return [p.to_document() for p in self.retrieve(query)]

    def _dense(self, vec: Sequence[float]) -> list[tuple[str, float]]:
        """Chunks ranked by similarity, each lifted by its section's best search keys."""
        found = self.index.dense(vec, min(self._n_records, DENSE_CANDIDATES))
        own: dict[str, float] = {}
        key_sims: dict[tuple[str, str], list[float]] = {}
        for rid, sim in found:
            section = self._key_section.get(rid)
            if section is not None:
                key_sims.setdefault(section, []).append(sim)
            elif rid in self._by_id:
                own[rid] = sim
        scored = []
        for cid, sim in own.items():
            c = self._by_id[cid]
            top = key_sims.get((c.article, c.section_id), [])[:TOP_KEYS]
            if self._has_keys[cid] and top:
                sim = CHUNK_SHARE * sim + (1 - CHUNK_SHARE) * sum(top) / len(top)
            scored.append((cid, sim))
        return sorted(scored, key=lambda t: -t[1])

    def _lexical_ranking(self, query: str) -> list[tuple[str, float]]:
        """Chunks ranked by BM25: the better of their own score and their section's best key."""
        assert self._lexical is not None  # built in model_post_init
        own: dict[str, float] = {}
        best_key: dict[tuple[str, str], float] = {}
        for owner, sc in zip(self._lex_owner, self._lexical.scores(query)):
            if isinstance(owner, tuple):
                best_key[owner] = max(best_key.get(owner, 0.0), sc)
            else:
                own[owner] = sc
        out = []
        for cid, sc in own.items():
            c = self._by_id[cid]
            sc = max(sc, best_key.get((c.article, c.section_id), 0.0))
            if sc > 0:
                out.append((cid, sc))
        return sorted(out, key=lambda t: (-t[1], t[0]))

    def _fuse(
        self, dense: list[tuple[str, float]], lexical: list[tuple[str, float]]
    ) -> list[Passage]:
        """Reciprocal-rank fusion of the two rankings (either may be empty)."""
        n = len(self._chunks)
        sims = dict(dense)
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, 1)}
        fused: dict[str, float] = {}
        for cid, r in dense_rank.items():
            fused[cid] = fused.get(cid, 0.0) + DENSE_WEIGHT / (RRF_K + r)
        for cid, r in lex_rank.items():
            fused[cid] = fused.get(cid, 0.0) + LEXICAL_WEIGHT / (RRF_K + r)
        order = sorted(fused, key=lambda cid: (-fused[cid], dense_rank.get(cid, n + 1), cid))
        return [
            Passage(self._by_id[cid], fused[cid], dense_rank.get(cid), lex_rank.get(cid),
                    sims.get(cid))
            for cid in order
        ]


def diversify(passages: list[Passage], k: int, per_section: int = 1) -> list[Passage]:
    """Keep the ranking, but let no section fill the top k while other sections wait.

    A section's second chunk (often overlapping the first) is held back behind the best
    chunk of every other section, then used only if k is not yet filled.
    """
    first: list[Passage] = []
    held: list[Passage] = []
    seen: Counter[str] = Counter()
    for p in passages:
        key = f"{p.chunk.article}#{p.section_id}"
        (first if seen[key] < per_section else held).append(p)
        seen[key] += 1
    return (first + held)[:k]


def build_retriever(
    settings: Settings, *, embedder: Embedder | None = None, progress: bool = False
) -> Retriever:
    """Load the embedder (if not given), make sure the index is fresh, and wrap it."""
    embedder = embedder or load_embedder(settings)
    index = VectorIndex(settings, embedder)
    state = index.ensure(progress=progress)
    return Retriever(index, state, top_k=settings.top_k)


__all__ = [
    "DEFAULT_MODE",
    "STOPWORDS",
    "Lexical",
    "Mode",
    "Passage",
    "Retriever",
    "build_retriever",
    "diversify",
    "stem",
    "tokenize",
]
