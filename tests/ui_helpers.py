"""Shared by the UI tests: one real `streamlit run ui/app.py` per test session, on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.testing.streamlit_server import StreamlitServer, server_env, server_workdir

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory):
    """The chat page served by a real Streamlit process (offline mode), shared by the session."""
    base = tmp_path_factory.mktemp("streamlit-server")
    server = StreamlitServer(cwd=server_workdir(base), env=server_env(base / "data"))
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cold_server(tmp_path):
    """A server nobody has opened yet: the Assistant loads when the first page asks."""
    server = StreamlitServer(cwd=server_workdir(tmp_path), env=server_env(tmp_path / "data"))
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()
