"""`python -m evals bench ui`: how quickly the chat page starts and answers, alone and under load.

Measures, against one `streamlit run ui/app.py` on a free loopback port:

- server start to health check, and to the first page rendered in headless Chromium;
- the first answer after start (cold) and warm answers, p50/p95, seen in the browser;
- N sessions (default 20) asking in parallel over Streamlit's own websocket protocol,
  as browsers do: errors, cross-talk between sessions, turn latency p50/p95;
- the server's resident memory, idle and with the N sessions connected.

Also the harness the UI tests use: `StreamlitServer`, `WsSession`, `launch_chromium`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.common import percentile, write_results

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "ui" / "app.py"
# Debian's Chromium; CHROMIUM_PATH overrides it (a knob of this harness, not of the product).
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# Quiet, private, reproducible: no sync, no component updates, no background requests.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# Questions for warm answers: everyday wording on the article's themes, none of them safety.
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


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
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


def server_workdir(base: Path) -> Path:
    """A working folder holding a copy of the project's .streamlit/config.toml and no .env."""
    (base / ".streamlit").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / ".streamlit" / "config.toml", base / ".streamlit" / "config.toml")
    return base


# --- a session over the websocket, as a browser tab talks to the server --------------------


@dataclass
class Turn:
    """What one rerun of the page sent back."""

    seconds: float
    texts: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)


class WsSession:
    """One browser-like session: Streamlit's protobuf messages over its websocket."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        from websockets.sync.client import connect

        ws_url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.timeout = timeout
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(
            connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=30, proxy=None)
        )
        self.chat_input_id: str | None = None
        self.page_hash = ""

    def _rerun(self, widgets: Sequence[Any] = ()) -> Turn:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = self.page_hash
        msg.rerun_script.widget_states.widgets.extend(widgets)
        start = time.perf_counter()
        self.ws.send(msg.SerializeToString())
        turn = Turn(seconds=0.0)
        deadline = start + self.timeout
        while True:
            raw = self.ws.recv(timeout=max(0.1, deadline - time.perf_counter()))
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = fwd.new_session.main_script_hash
            elif kind == "delta":
                self._collect(fwd, turn)
            elif kind == "script_finished":
                if fwd.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # a callback asked for another run; its output follows
                turn.seconds = time.perf_counter() - start
                return turn

    def _collect(self, fwd: Any, turn: Turn) -> None:
        delta = fwd.delta
        if delta.WhichOneof("type") == "new_element":
            el = delta.new_element
            kind = el.WhichOneof("type")
            if kind == "markdown":
                turn.texts.append(el.markdown.body)
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

    def load(self) -> Turn:
        """Open the page (the first run of a new tab)."""
        return self._rerun()

    def ask(self, text: str) -> Turn:
        """Submit a message in the chat input and wait for the run to finish."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if self.chat_input_id is None:
            raise RuntimeError("load the page before asking")
        state = WidgetState(id=self.chat_input_id)
        state.chat_input_value.data = text
        return self._rerun([state])

    def close(self) -> None:
        self._stack.close()


def run_sessions(
    base_url: str, n: int, questions: Sequence[str] = WARM_QUESTIONS, turns: int = 2
) -> dict[str, Any]:
    """Run `n` sessions in parallel, each asking `turns` questions tagged with its own token.

    A session's reply must echo only its own token: any other token is cross-talk.
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
            session = WsSession(base_url)
            session.load()
            barrier.wait(timeout=120)  # everyone asks at the same moment
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
        **_percentiles("turn", latencies),
    }


def _percentiles(name: str, values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {f"{name}_p50_s": None, f"{name}_p95_s": None, f"{name}_max_s": None}
    return {
        f"{name}_p50_s": round(statistics.median(values), 3),
        f"{name}_p95_s": round(percentile(values, 95), 3),
        f"{name}_max_s": round(max(values), 3),
    }


# --- the browser ---------------------------------------------------------------------------


def launch_chromium(playwright: Any) -> Any:
    """Launch Debian's Chromium headless, quiet and sandbox-free (for containers)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True
    )


def ask_in_browser(page: Any, text: str, timeout_ms: float = 120_000) -> float:
    """Type a message, send it, wait until the answer and its thumbs are drawn; return seconds."""
    messages = page.get_by_test_id("stChatMessage")
    before = messages.count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    start = time.perf_counter()
    box.press("Enter")
    # An answer is complete when its feedback thumbs (the last thing drawn) appear.
    answer = messages.nth(before + 1)
    answer.get_by_test_id("stFeedback").or_(
        answer.get_by_test_id("stAlertContainer")
    ).first.wait_for(timeout=timeout_ms)
    return time.perf_counter() - start


def bench_browser(server: StreamlitServer, warm: int, shots: Path | None) -> dict[str, Any]:
    """Start the server with Chromium already open, then time the page and answers in it."""
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            out["start_to_health_s"] = round(server.start(), 3)
            page.goto(server.url)
            page.get_by_text("Feeling far from your partner?").wait_for(timeout=120_000)
            out["start_to_first_page_s"] = round(time.perf_counter() - server.started_at, 3)
            page.locator(READY_MARKER).filter(visible=True).first.wait_for(timeout=300_000)
            out["start_to_ready_s"] = round(time.perf_counter() - server.started_at, 3)
            out["cold_answer_s"] = round(ask_in_browser(page, WARM_QUESTIONS[0]), 3)
            times = [
                ask_in_browser(page, WARM_QUESTIONS[1 + i % (len(WARM_QUESTIONS) - 1)])
                for i in range(warm)
            ]
            out.update(_percentiles("warm_answer", times))
            if shots:
                page.screenshot(path=str(shots / "bench-ui.png"), full_page=True)
        finally:
            browser.close()
    return out


# The starter prompts appear once the Assistant is loaded: the page is ready to answer.
READY_MARKER = ".st-key-starters button"


# --- the command ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals bench ui", description=__doc__)
    parser.add_argument("--sessions", type=int, default=20, help="parallel sessions (20)")
    parser.add_argument("--turns", type=int, default=2, help="questions per session (2)")
    parser.add_argument("--warm", type=int, default=10, help="warm answers in the browser (10)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium part")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    use_browser = not args.no_browser and CHROMIUM.exists()
    with tempfile.TemporaryDirectory(prefix="reconnect-bench-ui-") as tmp:
        workdir = server_workdir(Path(tmp))
        env = dict(os.environ)
        # The bench must not add to the real feedback file or reuse a developer's index.
        env.setdefault("RECONNECT_DATA_DIR", str(Path(tmp) / "data"))
        server = StreamlitServer(cwd=workdir, env=env)
        results: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count()},
        }
        try:
            if use_browser:
                shots = REPO / "artifacts"
                shots.mkdir(exist_ok=True)
                results.update(bench_browser(server, args.warm, shots))
            else:
                results["start_to_health_s"] = round(server.start(), 3)
                first = WsSession(server.url)
                first.load()
                results["start_to_ready_s"] = round(time.perf_counter() - server.started_at, 3)
                results["cold_answer_s"] = round(first.ask(WARM_QUESTIONS[0]).seconds, 3)
                first.close()
                results["browser"] = "skipped (--no-browser or no Chromium)"
            results["rss_idle_mib"] = round(server.rss_mib(), 1)
            peak = {"rss": 0.0}
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.2):
                    peak["rss"] = max(peak["rss"], server.rss_mib())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            load = run_sessions(server.url, args.sessions, turns=args.turns)
            done.set()
            sampler.join()
            results["load"] = load
            results["rss_with_sessions_peak_mib"] = round(peak["rss"], 1)
            results["rss_after_sessions_mib"] = round(server.rss_mib(), 1)
        finally:
            server.stop()

    path = write_results("bench-ui", results)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_table(results, path)
    ok = not results["load"]["errors"] and not results["load"]["crosstalk"]
    return 0 if ok else 1


def _print_table(r: dict[str, Any], path: Path) -> None:
    load = r["load"]
    rows = [
        ("server start → health check", r.get("start_to_health_s"), "s"),
        ("server start → first page rendered", r.get("start_to_first_page_s"), "s"),
        ("server start → ready to answer", r.get("start_to_ready_s"), "s"),
        ("first answer after start (cold)", r.get("cold_answer_s"), "s"),
        ("warm answer p50 (browser)", r.get("warm_answer_p50_s"), "s"),
        ("warm answer p95 (browser)", r.get("warm_answer_p95_s"), "s"),
        (f"{load['sessions']} sessions: turn p50", load.get("turn_p50_s"), "s"),
        (f"{load['sessions']} sessions: turn p95", load.get("turn_p95_s"), "s"),
        (f"{load['sessions']} sessions: errors", len(load["errors"]), ""),
        (f"{load['sessions']} sessions: cross-talk", len(load["crosstalk"]), ""),
        ("server RSS idle (after first answers)", r.get("rss_idle_mib"), "MiB"),
        (
            f"server RSS peak with {load['sessions']} sessions",
            r.get("rss_with_sessions_peak_mib"),
            "MiB",
        ),
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        shown = "-" if value is None else f"{value}{' ' + unit if unit else ''}"
        print(f"{name:<{width}}  {shown}")
    for line in load["errors"][:10] + load["crosstalk"][:10]:
        print(f"  ! {line}")
    print(f"\nresults: {path}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
