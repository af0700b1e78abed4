"""Shared by the UI tests: one real `streamlit run ui/app.py` per test session, on loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evals.bench_ui import StreamlitServer, server_workdir

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"

_LEAKY_PREFIXES = ("OPENAI_", "CHROMA_", "RECONNECT_", "AZURE_OPENAI")


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The server's environment: the developer's shell without keys, servers or data folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env.update(
        RECONNECT_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **extra,
    )
    return env


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
