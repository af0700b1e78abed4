"""A real `streamlit run ui/app.py` on loopback, and sessions that talk to it as browsers do.

Shared by the UI tests and `python -m evals bench ui`. Works from a source checkout (the
page lives in the repository's ui/ folder, not in the installed package).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "APP",
    "REPO",
    "WARM_QUESTIONS",
    "StreamlitServer",
    "Turn",
    "WsSession",
    "free_port",
    "percentiles",
    "run_sessions",
    "server_env",
    "server_workdir",
]

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "ui" / "app.py"

# Everyday wording on the article's themes, none of them safety: for warm answers and load.
WARM_QUESTIONS = (
    "we barely talk anymore, it feels like we're roommates",
    "how do I bring up that I feel distant without starting a fight?",
    "we never spend time together because of work and the kids",
    "what small gestures could make my partner feel loved?",
    "I rely on my partner for all my emotional support, is that a problem?",
    "should we try couples therapy even though nothing terrible happened?",
    "I think I've pulled away from my partner, where do I start?",
    "we used to have date nights, how do we get that back?",
    "how do I tell my wife I miss her when we live in the same house?",
    "my boyfriend and I only talk about bills and chores",
)

_LEAKY_PREFIXES = ("OPENAI_", "CHROMA_", "RECONNECT_", "AZURE_OPENAI")


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The server's environment: the caller's shell without keys, servers or data folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    env.update(
        RECONNECT_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **extra,
    )
    return env


def server_workdir(base: Path) -> Path:
    """A working folder holding a copy of the project's .streamlit/config.toml and no .env."""
    (base / ".streamlit").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / ".streamlit" / "config.toml", base / ".streamlit" / "config.toml")
    return base


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(x) for x in text.split()]
    return kids + [g for k in kids for g in _children(k)]


class StreamlitServer:
    """`streamlit run ui/app.py` on a free loopback port, in its own process group."""

    def __init__(
        self,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        app: Path = APP,
    ) -> None:
        self.cwd = Path(cwd or REPO)
        self.env = dict(os.environ if env is None else env)
        self.port = port or free_port()
        self.app = app
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.cwd / f"streamlit-{self.port}.log"
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 120.0) -> float:
        """Start the server; return seconds until its health check answers."""
        cmd = [
            sys.executable, "-m", "streamlit", "run", str(self.app),
            "--server.address", "127.0.0.1",
            "--server.port", str(self.port),
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
        ]  # fmt: skip
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child process
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.started_at
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"streamlit did not answer within {timeout:.0f} s:\n{self.log()}")

    def rss_mib(self) -> float:
        """Resident memory of the server and its child processes, in MiB."""
        if not self.proc:
            return 0.0
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return sum(_rss_kib(p) for p in pids) / 1024

    def log(self, tail: int = 4000) -> str:
        """The end of the server's log, for a failure message."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and its process group."""
        if not self.proc or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> StreamlitServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- a session over the websocket, as a browser tab talks to the server --------------------


@dataclass
class Turn:
    """What one run of the page sent back."""

    seconds: float
    texts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


class WsSession:
    """One browser-like session: Streamlit's protobuf messages over its websocket."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        from websockets.sync.client import connect
        from websockets.typing import Subprotocol

        ws_url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.timeout = timeout
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(
            # No client keepalive: a busy server answers pings late, and the read timeout
            # already bounds every wait.
            connect(
                ws_url,
                subprotocols=[Subprotocol("streamlit")],
                max_size=None,
                open_timeout=30,
                proxy=None,
                ping_interval=None,
            )
        )
        self.chat_input_id: str | None = None
        self.page_hash = ""

    def _rerun(self, widgets: Sequence[Any] = ()) -> Turn:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = self.page_hash
        msg.rerun_script.widget_states.widgets.extend(widgets)
        start = time.perf_counter()
        self.ws.send(msg.SerializeToString())
        turn = Turn(seconds=0.0)
        while not self._receive(turn, start + self.timeout):
            pass
        turn.seconds = time.perf_counter() - start
        return turn

    def _receive(self, turn: Turn, deadline: float) -> bool:
        """Read one message into `turn`; return True when the run finished for good."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        raw = self.ws.recv(timeout=max(0.1, deadline - time.perf_counter()))
        fwd = ForwardMsg()
        fwd.ParseFromString(raw)
        kind = fwd.WhichOneof("type")
        if kind == "new_session":
            self.page_hash = fwd.new_session.main_script_hash
        elif kind == "delta":
            self._collect(fwd, turn)
        elif kind == "script_finished":
            # A run that asks for another (a callback, st.rerun) is followed by its output.
            return bool(fwd.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN)
        return False

    def _collect(self, fwd: Any, turn: Turn) -> None:
        delta = fwd.delta
        if delta.WhichOneof("type") == "new_element":
            el = delta.new_element
            kind = el.WhichOneof("type")
            if kind == "markdown":
                turn.texts.append(el.markdown.body)
            elif kind == "text":
                turn.texts.append(el.text.body)
            elif kind == "html":
                turn.texts.append(el.html.body)
            elif kind == "alert":
                turn.texts.append(el.alert.body)
            elif kind == "chat_input":
                self.chat_input_id = el.chat_input.id
            elif kind == "exception":
                turn.exceptions.append(el.exception.type)
        elif delta.WhichOneof("type") == "add_block":
            block = delta.add_block
            if block.WhichOneof("type") == "expandable":
                turn.texts.append(block.expandable.label)

    def submit(self, text: str) -> None:
        """Send a message from the chat input without waiting for anything."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if self.chat_input_id is None:
            raise RuntimeError("load the page before sending")
        state = WidgetState(id=self.chat_input_id)
        state.chat_input_value.data = text
        msg = BackMsg()
        msg.rerun_script.page_script_hash = self.page_hash
        msg.rerun_script.widget_states.widgets.extend([state])
        self.ws.send(msg.SerializeToString())

    def read_run(self) -> Turn:
        """Read what the server sends until a run ends; return what that run drew.

        A run stopped for a newer one (a message sent meanwhile) ends without a
        `script_finished`: the newer run's `new_session` starts it over, so the texts are
        those of the run that finished, the page as it now stands.
        """
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        start = time.perf_counter()
        turn = Turn(seconds=0.0)
        deadline = start + self.timeout
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=max(0.1, deadline - time.perf_counter())))
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = fwd.new_session.main_script_hash
                turn = Turn(seconds=0.0)
            elif kind == "delta":
                self._collect(fwd, turn)
            elif kind == "script_finished":
                turn.seconds = time.perf_counter() - start
                return turn

    def read_until(self, text: str) -> Turn:
        """Read what the server sends until an element shows exactly `text`."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        turn = Turn(seconds=0.0)
        deadline = time.perf_counter() + self.timeout
        while text not in turn.texts:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=max(0.1, deadline - time.perf_counter())))
            if fwd.WhichOneof("type") == "delta":
                self._collect(fwd, turn)
        return turn

    def load(self) -> Turn:
        """Open the page (the first run of a new tab) and wait until it is drawn."""
        return self._rerun()

    def start_load(self) -> None:
        """Open the page and return as soon as its chat input is drawn (the run goes on)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.page_script_hash = self.page_hash
        self.ws.send(msg.SerializeToString())
        deadline = time.perf_counter() + self.timeout
        while self.chat_input_id is None:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=max(0.1, deadline - time.perf_counter())))
            if fwd.WhichOneof("type") == "new_session":
                self.page_hash = fwd.new_session.main_script_hash
            elif fwd.WhichOneof("type") == "delta":
                self._collect(fwd, Turn(seconds=0.0))

    def ask(self, text: str) -> Turn:
        """Submit a message in the chat input and wait for the answer's final run."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if self.chat_input_id is None:
            raise RuntimeError("load the page before asking")
        state = WidgetState(id=self.chat_input_id)
        state.chat_input_value.data = text
        return self._rerun([state])

    def close(self) -> None:
        """Close the websocket."""
        self._stack.close()


def percentiles(name: str, values: Sequence[float]) -> dict[str, float | None]:
    """Median, p95 (nearest rank) and max of `values`, rounded to ms, keyed by `name`."""
    if not values:
        return {f"{name}_p50_s": None, f"{name}_p95_s": None, f"{name}_max_s": None}
    ranked = sorted(values)
    p95 = ranked[max(0, min(len(ranked) - 1, -(-95 * len(ranked) // 100) - 1))]
    return {
        f"{name}_p50_s": round(statistics.median(values), 3),
        f"{name}_p95_s": round(p95, 3),
        f"{name}_max_s": round(max(values), 3),
    }


def run_sessions(
    base_url: str,
    n: int,
    questions: Sequence[str] = WARM_QUESTIONS,
    turns: int = 2,
    *,
    turn_timeout: float = 120.0,
    load_timeout: float = 600.0,
) -> dict[str, Any]:
    """Run `n` sessions in parallel, each asking `turns` questions tagged with its own token.

    A session's reply must echo only its own token: any other token is cross-talk. Each
    answer must come within `turn_timeout`; the first page load may include the server's
    cold start (the Assistant loading), so it has `load_timeout`.
    """
    tokens = [f"s{i:02d}{uuid.uuid4().hex[:6]}" for i in range(n)]
    barrier = threading.Barrier(n)
    errors: list[str] = []
    crosstalk: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        token = tokens[i]
        session = None
        try:
            session = WsSession(base_url, timeout=load_timeout)
            session.load()
            session.timeout = turn_timeout
            barrier.wait(timeout=load_timeout)  # everyone asks at the same moment
            for t in range(turns):
                question = f"{questions[(i + t) % len(questions)]} ({token})"
                turn = session.ask(question)
                joined = "\n".join(turn.texts)
                with lock:
                    latencies.append(turn.seconds)
                    if turn.exceptions:
                        errors.append(f"{token}: exception {turn.exceptions}")
                    if token not in joined:
                        errors.append(f"{token}: own message missing from turn {t}")
                    if not any(x.startswith("Source:") for x in turn.texts):
                        errors.append(f"{token}: no source under the answer of turn {t}")
                    others = [o for o in tokens if o != token and o in joined]
                    if others:
                        crosstalk.append(f"{token} saw {others}")
        except Exception as exc:  # noqa: BLE001 - counted and reported, not raised
            with lock:
                errors.append(f"{token}: {type(exc).__name__}: {exc}")
        finally:
            if session:
                session.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(one, range(n)))
    return {
        "sessions": n,
        "turns": len(latencies),
        "errors": errors,
        "crosstalk": crosstalk,
        "wall_seconds": time.perf_counter() - start,
        **percentiles("turn", latencies),
    }
