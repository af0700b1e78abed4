"""A real OpenAI-compatible HTTP server on loopback, scripted per test.

The real `openai` client and langchain-openai talk to it over TCP, so retries,
timeouts and SSE streaming are exercised end to end; nothing in the SDK is patched.

    with FakeOpenAI() as server:
        server.enqueue(Status(429), Reply("Try a walk [1]."))
        ChatOpenAI(base_url=server.base_url, api_key="sk-test", ...)

Requests take actions from the queue in order; when it is empty, `default` answers
(a fixed Reply, or a callable given the request body). Request bodies are kept in
memory only, for assertions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "BrokenStream",
    "ContextTooLong",
    "EmptyReply",
    "FakeOpenAI",
    "Garbage",
    "Hang",
    "Reply",
    "Seen",
    "Status",
    "grounded_answer",
    "numbered_passages",
]


@dataclass
class Reply:
    """Answer with `text`, streamed in word pieces when the client asks for a stream."""

    text: str
    first_token_delay: float = 0.0  # seconds before the first content piece
    token_delay: float = 0.0  # seconds between pieces
    words_per_piece: int = 1


@dataclass
class Status:
    """Fail with an HTTP status and an OpenAI-shaped error body."""

    code: int
    message: str = "scripted failure"
    error_type: str = "server_error"
    error_code: str | None = None
    retry_after_ms: int | None = 5  # short, so the real client's retries stay fast in tests


def ContextTooLong() -> Status:  # noqa: N802 - reads like the other actions
    """The error an OpenAI endpoint gives for a prompt beyond the model's context."""
    return Status(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 12000 tokens. Please reduce the length of the messages.",
        error_type="invalid_request_error",
        error_code="context_length_exceeded",
        retry_after_ms=None,
    )


@dataclass
class Hang:
    """Accept the request and say nothing for `seconds` (or until the server closes)."""

    seconds: float = 30.0


@dataclass
class Garbage:
    """Send a 200 with bytes that are not the promised JSON / SSE events."""

    body: bytes = b"data: {not json at all\n\ndata: \x00\xff\xfe garbage\n\n"


@dataclass
class EmptyReply:
    """A well-formed answer with no content: a stream of only [DONE], or content ''."""


@dataclass
class BrokenStream:
    """Stream `text` then drop the connection without finishing the stream."""

    text: str = "Here is the start of"


Action = Reply | Status | Hang | Garbage | EmptyReply | BrokenStream


@dataclass
class Seen:
    """One request as the server saw it, with server-side timings (perf_counter seconds)."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    received: float
    first_token: float | None = None
    finished: float | None = None
    action: str = ""

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def server_seconds(self) -> float:
        """Time the server spent on this request, from receipt to its last byte."""
        return (self.finished or self.received) - self.received


@dataclass
class _State:
    queue: deque = field(default_factory=deque)
    default: Action | Callable[[dict], Action] | None = None
    seen: list[Seen] = field(default_factory=list)
    api_key: str | None = None
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    state: _State  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None  # request bodies are conversation text: keep them out of logs

    # -- plumbing

    def _json(self, status: int, payload: dict, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _event(self, payload: dict | str) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self._chunk(f"data: {text}\n\n".encode())

    # -- routes

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:  # noqa: N802
        received = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body, received)
        st = self.state
        with st.lock:
            st.seen.append(seen)
            action: Any = st.queue.popleft() if st.queue else st.default
        if callable(action):
            action = action(body)
        if action is None:
            action = Status(500, "FakeOpenAI has nothing scripted for this request")
        seen.action = type(action).__name__
        try:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, _error("not found", "invalid_request_error", None))
            elif st.api_key is not None and self.headers.get("Authorization") != (
                f"Bearer {st.api_key}"
            ):
                self._json(401, _error("Incorrect API key provided.", "invalid_request_error",
                                       "invalid_api_key"))
            else:
                self._act(action, body, seen)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): that is the point of some scripts
        finally:
            if seen.finished is None:
                seen.finished = time.perf_counter()

    def _act(self, action: Action, body: dict, seen: Seen) -> None:
        handlers = {Status: self._status, Hang: self._hang, Garbage: self._garbage,
                    EmptyReply: self._empty, BrokenStream: self._broken, Reply: self._reply}
        handlers[type(action)](action, body, seen)  # type: ignore[operator]

    def _status(self, action: Status, body: dict, seen: Seen) -> None:
        extra = {}
        if action.retry_after_ms is not None:
            extra["retry-after-ms"] = str(action.retry_after_ms)
        self._json(action.code, _error(action.message, action.error_type, action.error_code),
                   extra)

    def _hang(self, action: Hang, body: dict, seen: Seen) -> None:
        # Wait without answering; the client's timeout is what ends this.
        self.state.closing.wait(action.seconds)
        self.close_connection = True

    def _garbage(self, action: Garbage, body: dict, seen: Seen) -> None:
        if body.get("stream"):
            self._start_chunked("text/event-stream")
            self._chunk(action.body)
            self._end_chunked()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(action.body)))
        self.end_headers()
        self.wfile.write(action.body)

    def _empty(self, action: EmptyReply, body: dict, seen: Seen) -> None:
        if not body.get("stream"):
            self._json(200, _completion(body.get("model", "fake-model"), ""))
            return
        self._start_chunked("text/event-stream")
        self._event("[DONE]")
        self._end_chunked()

    def _broken(self, action: BrokenStream, body: dict, seen: Seen) -> None:
        model = body.get("model", "fake-model")
        self._start_chunked("text/event-stream")
        self._event(_delta(model, {"role": "assistant", "content": ""}))
        seen.first_token = time.perf_counter()
        self._event(_delta(model, {"content": action.text}))
        # Drop the connection mid-stream: no final chunk, no [DONE], no chunk terminator.
        self.close_connection = True
        self.wfile.flush()

    def _reply(self, action: Reply, body: dict, seen: Seen) -> None:
        model = body.get("model", "fake-model")
        text, finish = _limit(action.text, body)
        if not body.get("stream"):
            if action.first_token_delay:
                time.sleep(action.first_token_delay)
            seen.first_token = seen.finished = time.perf_counter()
            self._json(200, _completion(model, text, finish))
            return
        self._start_chunked("text/event-stream")
        self._event(_delta(model, {"role": "assistant", "content": ""}))
        if action.first_token_delay:
            time.sleep(action.first_token_delay)
        for i, piece in enumerate(_pieces(text, action.words_per_piece)):
            if i and action.token_delay:
                time.sleep(action.token_delay)
            if self.state.closing.is_set():
                return
            self._event(_delta(model, {"content": piece}))
            if seen.first_token is None:
                seen.first_token = time.perf_counter()
        self._event(_delta(model, {}, finish=finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({**_chunk_base(model), "choices": [], "usage": _usage(action.text)})
        # Stamped before the last bytes go out: the client may be done reading them
        # before this thread runs again, and a benchmark reads the stamp right then.
        seen.finished = time.perf_counter()
        self._event("[DONE]")
        self._end_chunked()


def _limit(text: str, body: dict) -> tuple[str, str]:
    """The text cut to the request's token limit (a word for a token), and why it ended."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    parts = re.findall(r"\S+\s*", text)
    if isinstance(limit, int) and len(parts) > limit:
        return "".join(parts[:limit]).rstrip(), "length"
    return text, "stop"


def _pieces(text: str, words: int) -> list[str]:
    parts = re.findall(r"\S+\s*|\s+", text)
    return ["".join(parts[i : i + words]) for i in range(0, len(parts), max(1, words))]


def _error(message: str, etype: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def _usage(text: str) -> dict:
    n = max(1, len(text.split()))
    return {"prompt_tokens": 100, "completion_tokens": n, "total_tokens": 100 + n}


def _chunk_base(model: str) -> dict:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": None}


def _delta(model: str, delta: dict, finish: str | None = None) -> dict:
    return {**_chunk_base(model),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}


def _completion(model: str, text: str, finish: str = "stop") -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
        "usage": _usage(text),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # a client closing a kept-alive connection is normal
        super().handle_error(request, client_address)


class FakeOpenAI:
    """The server: `start()`/`close()` or use as a context manager; `base_url` ends in /v1."""

    def __init__(self, *, default: Action | Callable[[dict], Action] | None = None,
                 api_key: str | None = None) -> None:
        self.state = _State(default=default, api_key=api_key)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[Seen]:
        return list(self.state.seen)

    @property
    def default(self) -> Action | Callable[[dict], Action] | None:
        return self.state.default

    @default.setter
    def default(self, value: Action | Callable[[dict], Action] | None) -> None:
        self.state.default = value

    def enqueue(self, *actions: Action | Callable[[dict], Action]) -> FakeOpenAI:
        """Script the next requests, in order."""
        with self.state.lock:
            self.state.queue.extend(actions)
        return self

    def reset(self) -> None:
        """Forget the script, the default and the requests seen."""
        with self.state.lock:
            self.state.queue.clear()
            self.state.seen.clear()
            self.state.default = None

    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-openai",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.state.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_PASSAGE_LINE = re.compile(r"^\[(\d+)\]\s*(?:\(([^)]*)\))?\s*(.*)$")


def numbered_passages(body: dict) -> dict[int, str]:
    """The numbered passages the assistant put in its prompt: {n: text}.

    Lets a scripted `default` answer from whatever was retrieved, like a model would.
    """
    out: dict[int, str] = {}
    for msg in body.get("messages", []):
        content = msg.get("content")
        if not isinstance(content, str):
            continue
        for line in content.splitlines():
            m = _PASSAGE_LINE.match(line.strip())
            if m:
                out[int(m.group(1))] = m.group(3)
    return out


_SENTENCE = re.compile(r"(?<=[.!?])[\"”’)]*\s+(?=[\"“A-Z])")


def grounded_answer(body: dict, *, plant: str | None = None, quote_from: int = 1,
                    cite: int | None = None) -> str:
    """An answer like a careful model's: it quotes a prompt passage and cites it.

    The quote is the first sentence of passage `quote_from`, copied exactly; `plant`
    adds a sentence the passages do not support (what verification must catch);
    `cite` overrides the number cited (to cite a passage that does not exist).
    """
    passages = numbered_passages(body)
    text = passages.get(quote_from) or next(iter(passages.values()), "")
    first = _SENTENCE.split(text)[0].strip() if text else ""
    n = cite if cite is not None else quote_from
    parts = [
        "That sounds really hard.",
        f"The article puts it this way: \"{first}\" [{n}].",
    ]
    if plant:
        parts.append(plant)
    second = _SENTENCE.split(passages.get(2, ""))[0].strip() if passages.get(2) else ""
    if second:
        parts.append(f"It also says \"{second}\" [2].")
    parts.append("Would it feel possible to try one small step this week?")
    return " ".join(parts)
