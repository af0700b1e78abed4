"""The same code against a real Chroma server (`chroma run` on loopback)."""

from __future__ import annotations

import pytest

from assistant.config import Settings
from assistant.errors import StoreError
from assistant.index import VectorIndex
from assistant.retrieval import build_retriever

from .conftest import REPO
from .servers import chroma_server, free_port

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chroma-server")
    with chroma_server(tmp / "db", tmp / "chroma.log") as addr:
        yield addr


def test_index_and_search_through_a_chroma_server(chroma, embedder, tmp_path):
    host, port = chroma
    s = Settings(data_dir=tmp_path / "data", corpus_dir=REPO / "corpus", chroma_host=host,
                 chroma_port=port)
    assert s.chroma_mode == "server"
    r = build_retriever(s, embedder=embedder)
    assert r.state.mode == "server" and r.state.built
    assert not (tmp_path / "data" / "chroma").exists(), "nothing embedded was created"
    top = r.retrieve("should we try couples counselling", 3)
    assert top[0].section_id == "tip-6"

    # A second replica with the same corpus finds the index fresh and does not rebuild it.
    r2 = build_retriever(s, embedder=embedder)
    assert not r2.state.built
    assert [p.chunk.chunk_id for p in r2.retrieve("date night", 3)] == [
        p.chunk.chunk_id for p in r.retrieve("date night", 3)]
    assert VectorIndex(s, embedder).status()["state"] == "fresh"


def test_an_unreachable_server_is_a_clear_error(embedder, tmp_path):
    s = Settings(data_dir=tmp_path / "d", corpus_dir=REPO / "corpus", chroma_host="127.0.0.1",
                 chroma_port=free_port())
    with pytest.raises(StoreError, match="Can't reach the Chroma server"):
        build_retriever(s, embedder=embedder)
