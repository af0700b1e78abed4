"""Shared fixtures: an isolated environment per test, and one loaded model per session.

Isolation starts when this file is imported, before any fixture (session-scoped ones
included) builds `Settings`: HOME, the XDG folders and the data folder point into a fresh
temporary folder, the working directory has no `.env`, and no API key, server or
RECONNECT_* setting leaks in from the developer's shell. Servers the tests start inherit it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_LEAKY_PREFIXES = ("OPENAI_", "CHROMA_", "RECONNECT_", "AZURE_OPENAI")
# Fixtures that start a server (a thread on loopback or a process): tests using them are
# marked `server` here, so `-m "not server"` never starts one.
SERVER_FIXTURES = frozenset({"fake_openai", "llm_assistant", "streamlit_server", "chroma"})

_SANDBOX = Path(tempfile.mkdtemp(prefix="reconnect-tests-"))


def _isolate_process() -> None:
    """Point HOME, XDG folders, the data folder and the cwd at the sandbox; drop leaky vars."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            del os.environ[name]
    home = _SANDBOX / "home"
    for sub in ("", ".config", ".cache", ".local/share"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "RECONNECT_DATA_DIR": str(_SANDBOX / "data"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    })
    os.chdir(_SANDBOX)  # so a developer's .env is never read


_isolate_process()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a server fixture as `server`."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session", autouse=True)
def _sandbox() -> Iterator[Path]:
    """Remove the sandbox when the session ends."""
    yield _SANDBOX
    shutil.rmtree(_SANDBOX, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test gets its own data folder and cwd; settings a test sets are undone after it."""
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECONNECT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
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
