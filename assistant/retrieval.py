"""Hybrid retrieval: dense (Chroma) and lexical (BM25) results fused by reciprocal rank."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .config import Settings
from .corpus import Article, Chunk
from .errors import QueryError
from .index import Embedder, IndexState, VectorIndex, load_embedder

Mode = Literal["hybrid", "dense", "lexical"]

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

_STOPWORDS = frozenset(
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


def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'talking'/'talk', 'feelings'/'feel'."""
    w = word.replace("'", "")
    for suffix, repl in (
        ("iness", "y"), ("ational", "ate"), ("fulness", "ful"), ("ousness", "ous"),
        ("ically", "ic"), ("ation", "ate"), ("ities", "ity"), ("ness", ""), ("ments", "ment"),
        ("ings", ""), ("ing", ""), ("edly", ""), ("ies", "y"), ("ied", "y"), ("ed", ""),
        ("ly", ""), ("es", ""), ("s", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: len(w) - len(suffix)] + repl
            break
    if len(w) > 4 and w[-1] == w[-2] and w[-1] not in "lsz":
        w = w[:-1]  # 'stopp' -> 'stop'
    return w


def tokenize(text: str) -> list[str]:
    words = _WORD.findall(text.lower().replace("’", "'"))
    return [stem(w) for w in words if w not in _STOPWORDS and len(w) > 1]


class BM25:
    """Okapi BM25 over a handful of chunks; small enough to keep in memory per process."""

    def __init__(self, docs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs = [Counter(tokenize(d)) for d in docs]
        self.lengths = [sum(c.values()) for c in self.docs]
        self.avgdl = (sum(self.lengths) / len(self.lengths)) if self.docs else 0.0
        df: Counter[str] = Counter()
        for c in self.docs:
            df.update(c.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str) -> list[float]:
        terms = [t for t in tokenize(query) if t in self.idf]
        out = []
        for c, dl in zip(self.docs, self.lengths):
            s = 0.0
            norm = self.k1 * (1 - self.b + self.b * dl / (self.avgdl or 1))
            for t in terms:
                tf = c.get(t, 0)
                if tf:
                    s += self.idf[t] * tf * (self.k1 + 1) / (tf + norm)
            out.append(s)
        return out


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


class Retriever:
    """Dense + BM25 over the indexed chunks, fused, with near-duplicates held back."""

    def __init__(self, index: VectorIndex, state: IndexState, top_k: int = 4) -> None:
        self.index = index
        self.state = state
        self.top_k = top_k
        self.embedder: Embedder = index.embedder
        self.articles: list[Article] = index.articles
        self.chunks: list[Chunk] = index.indexed_chunks()
        self._by_id = {c.chunk_id: c for c in self.chunks}
        keys = {a.slug: a.keys for a in self.articles}
        self._has_keys = {
            c.chunk_id: bool(keys.get(c.article, {}).get(c.section_id)) for c in self.chunks
        }
        # Lexical documents: each chunk (with its title), and each search key on its own,
        # so a short key that shares two words with the question is not diluted.
        self._lex_owner: list[str | tuple[str, str]] = [c.chunk_id for c in self.chunks]
        lex_docs = [f"{c.section_title}. {c.text}" for c in self.chunks]
        for a in self.articles:
            for sid, ks in a.keys.items():
                self._lex_owner += [(a.slug, sid)] * len(ks)
                lex_docs += list(ks)
        self._bm25 = BM25(lex_docs)
        self._n_records = index.size()
        # Which section each search key points at (ids come back from Chroma without metadata).
        self._key_section = {
            rid: (meta["article"], meta["section_id"])
            for rid, _text, _doc, meta in index.records() if meta["kind"] == "key"
        }

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text)

    def _dense(self, vec: Sequence[float]) -> list[tuple[str, float]]:
        """Chunks ranked by similarity, each lifted by its section's best search keys."""
        found = self.index.dense(vec, min(self._n_records, DENSE_CANDIDATES))
        own: dict[str, float] = {}
        key_sims: dict[tuple[str, str], list[float]] = {}
        for rid, sim in found:
            section = self._key_section.get(rid)
            if section is not None:
                key_sims.setdefault(section, []).append(sim)
            else:
                own[rid] = sim
        scored = []
        for cid, sim in own.items():
            c = self._by_id.get(cid)
            if c is None:
                continue
            top = key_sims.get((c.article, c.section_id), [])[:TOP_KEYS]
            if self._has_keys[cid] and top:
                key_part = sum(top) / len(top)
                sim = CHUNK_SHARE * sim + (1 - CHUNK_SHARE) * key_part
            scored.append((cid, sim))
        return sorted(scored, key=lambda t: -t[1])

    def _lexical(self, query: str) -> list[tuple[str, float]]:
        """Chunks ranked by BM25: the better of their own score and their section's best key."""
        scores = self._bm25.scores(query)
        own: dict[str, float] = {}
        best_key: dict[tuple[str, str], float] = {}
        for owner, sc in zip(self._lex_owner, scores):
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

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        *,
        embedding: Sequence[float] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Passage]:
        """Rank chunks for a query; pass `embedding` when the turn already computed it."""
        if not query or not query.strip():
            raise QueryError("The question is empty: type what's on your mind.")
        k = k or self.top_k
        n = len(self.chunks)
        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        if mode in ("hybrid", "dense"):
            vec = embedding if embedding is not None else self.embed_query(query)
            dense = self._dense(vec)
        if mode in ("hybrid", "lexical"):
            lexical = self._lexical(query)

        sims = dict(dense)
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, 1)}
        fused: dict[str, float] = {}
        for cid, r in dense_rank.items():
            fused[cid] = fused.get(cid, 0.0) + DENSE_WEIGHT / (RRF_K + r)
        for cid, r in lex_rank.items():
            fused[cid] = fused.get(cid, 0.0) + LEXICAL_WEIGHT / (RRF_K + r)
        order = sorted(fused, key=lambda cid: (-fused[cid], dense_rank.get(cid, n + 1), cid))
        passages = [
            Passage(self._by_id[cid], fused[cid], dense_rank.get(cid), lex_rank.get(cid),
                    sims.get(cid))
            for cid in order if cid in self._by_id
        ]
        return diversify(passages, k)


def diversify(passages: list[Passage], k: int, per_section: int = 1) -> list[Passage]:
    """Keep the ranking, but let no section fill the top k while other sections wait.

    A section's second chunk (often overlapping the first) is held back behind the best
    chunk of every other section, then used only if k is not yet filled.
    """
    first, held = [], []
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
