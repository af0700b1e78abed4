"""Start real servers on loopback for tests: a free port, wait until ready, stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


@contextmanager
def running(cmd: Sequence[str], ready_url: str, *, log: Path, env: dict | None = None,
            timeout: float = 90.0) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            try:
                wait_http(ready_url, timeout, proc)
            except Exception as exc:
                raise RuntimeError(f"{exc}\n--- server log ---\n{log.read_text()[-3000:]}") from exc
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)


@contextmanager
def chroma_server(path: Path, log: Path) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on 127.0.0.1."""
    port = free_port()
    cmd = [str(BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1",
           "--port", str(port)]
    with running(cmd, f"http://127.0.0.1:{port}/api/v2/heartbeat", log=log):
        yield "127.0.0.1", port
