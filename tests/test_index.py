"""The model checksum, index freshness by fingerprint, and recovery from a corrupt store."""

from __future__ import annotations

import shutil

import pytest

from assistant.config import Settings
from assistant.errors import ModelError
from assistant.index import MODEL_SHA256, VectorIndex, local_model_dir, verify_model
from assistant.retrieval import Retriever

from .conftest import REPO


def test_the_shipped_model_passes_its_checksum():
    assert verify_model(local_model_dir()) == MODEL_SHA256


def test_weights_that_fail_the_checksum_are_refused(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(local_model_dir(), model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").write_bytes(b"not the weights we pinned")
    with pytest.raises(ModelError, match="checksum"):
        verify_model(model)


def test_missing_weights_are_refused(tmp_path):
    with pytest.raises(ModelError, match="missing"):
        verify_model(tmp_path)


@pytest.fixture
def corpus_copy(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", dst)
    return dst


def _settings(tmp_path, corpus_dir, **kw):
    return Settings(data_dir=tmp_path / "data", corpus_dir=corpus_dir, **kw)


def test_unchanged_corpus_is_not_rebuilt_and_a_change_rebuilds(tmp_path, corpus_copy, embedder):
    s = _settings(tmp_path, corpus_copy)
    first = VectorIndex(s, embedder).ensure()
    assert first.built and first.chunks >= 8
    again = VectorIndex(s, embedder).ensure()
    assert not again.built and again.fingerprint == first.fingerprint

    article = corpus_copy / "reconnecting-with-your-partner.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nOne more sentence about tea.\n",
                       encoding="utf-8")
    changed = VectorIndex(s, embedder)
    state = changed.ensure()
    assert state.built and state.fingerprint != first.fingerprint
    names = [c.name for c in changed.client().list_collections()]
    assert names == [changed.collection_name], "the stale collection is pruned"
    assert "tea" in Retriever(changed, state).retrieve("tea", 1, mode="lexical")[0].text


def test_changing_chunk_settings_changes_the_fingerprint(tmp_path, corpus_copy, embedder):
    a = VectorIndex(_settings(tmp_path, corpus_copy), embedder)
    b = VectorIndex(_settings(tmp_path, corpus_copy, chunk_tokens=64), embedder)
    assert a.fingerprint != b.fingerprint


def test_a_failed_build_leaves_the_served_index_untouched(tmp_path, corpus_copy, embedder):
    s = _settings(tmp_path, corpus_copy)
    good = VectorIndex(s, embedder)
    good.ensure()

    class Exploding:
        model_id = embedder.model_id
        embeddings = embedder.embeddings

        def embed_documents(self, texts):
            raise RuntimeError("disk full")

    (corpus_copy / "extra.md").write_text("## Extra\n\nNew words.\n", encoding="utf-8")
    broken = VectorIndex(s, Exploding())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        broken.ensure()
    names = [c.name for c in broken.client().list_collections()]
    assert good.collection_name in names
    assert not any("-tmp-" in n for n in names), "the half-built collection is removed"
    assert broken.collection_name not in names


def test_a_corrupt_store_is_reported_and_rebuilt(tmp_path, corpus_copy, embedder):
    from chromadb.api.client import SharedSystemClient

    s = _settings(tmp_path, corpus_copy)
    VectorIndex(s, embedder).ensure()
    SharedSystemClient.clear_system_cache()
    sqlite = s.chroma_path / "chroma.sqlite3"
    assert sqlite.exists()
    sqlite.write_bytes(b"this is not a database" * 100)

    index = VectorIndex(s, embedder)
    assert "unreadable" in index.status()["state"]
    index = VectorIndex(s, embedder)
    state = index.ensure()
    assert state.built
    assert any("unreadable" in n and "rebuilt" in n for n in state.notices)
    assert list(tmp_path.joinpath("data").glob("chroma.corrupt-*")), "the bad store is kept aside"
    hits = Retriever(index, state).retrieve("couples therapy", 2)
    assert hits and hits[0].section_id == "tip-6"
