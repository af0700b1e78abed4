"""Shared fixtures: an isolated environment per test, and one loaded model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

_LEAKY_PREFIXES = ("OPENAI_", "CHROMA_", "RECONNECT_", "AZURE_OPENAI")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path):
    """No API key, server or data folder leaks in from the developer's shell or `.env`."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECONNECT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # so a developer's .env is never read
    yield


@pytest.fixture
def settings(tmp_path):
    from assistant.config import Settings

    return Settings(data_dir=tmp_path / "data", corpus_dir=REPO / "corpus")


@pytest.fixture(scope="session")
def embedder():
    """The real offline embedding model, loaded once (checksum verified)."""
    from assistant.config import Settings
    from assistant.index import load_embedder

    return load_embedder(Settings())


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("shared-index")


@pytest.fixture(scope="session")
def retriever(embedder, session_data_dir):
    """A hybrid retriever over the real corpus, with an embedded Chroma index in a tmp dir."""
    from assistant.config import Settings
    from assistant.retrieval import build_retriever

    s = Settings(data_dir=session_data_dir, corpus_dir=REPO / "corpus")
    return build_retriever(s, embedder=embedder)
