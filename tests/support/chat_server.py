"""A real HTTP server on loopback that speaks the chat-completions API, scripted per test.

Each POST takes the next :class:`Reply` from the script (a 500 saying so when the script is
empty) and is recorded as a :class:`Received`: path, headers, JSON body and arrival time
(``time.monotonic``, and ``time.time`` as ``wall``). A reply's ``delay`` makes the server
slow; :meth:`ChatServer.stop` cuts every delay short and joins the handler threads, so nothing
outlives the test. :class:`AlwaysAnswer` answers every request alike (the chaos scenarios), and
:func:`calls_per_attempt` counts requests by the ``X-PA-Run: <run_id>/<attempt>`` header the
OpenAI-compatible agent sends.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any
    at: float  # time.monotonic() on arrival
    wall: float = 0.0  # time.time() on arrival


def completion(
    text: str,
    *,
    model: str = "test-model-2026",
    prompt_tokens: int = 42,
    completion_tokens: int = 7,
    delay: float = 0.0,
) -> Reply:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Reply(200, json.dumps(body).encode(), delay=delay)


def tool_call(name: str, arguments: object) -> Reply:
    """A chat completion calling the tool ``name`` with ``arguments`` (a dict is sent as a JSON
    string, as OpenAI does; a string as it is)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": raw}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    return Reply(200, json.dumps({"model": "m", "choices": [choice]}).encode())


def error(status: int, message: str, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An OpenAI-style error body: ``{"error": {"message": ..., "type": ..., "code": ...}}``."""
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return Reply(status, json.dumps(body).encode(), headers=headers)


def rate_limited(retry_after: str) -> Reply:
    return error(429, "Rate limit reached, slow down.", headers=(("Retry-After", retry_after),))


def http_date(seconds_from_now: float) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


class ChatServer:
    """``with ChatServer() as server:`` serves on ``server.base_url`` (``.../v1``)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = False  # server_close() joins the handler threads
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def root_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
            if self._script:
                return self._script.popleft()
        return error(500, "chat_server: no scripted reply left")


class AlwaysAnswer(ChatServer):
    """Answers every request with a completion naming its run, after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay

    def _next(self, received: Received) -> Reply:
        with self._lock:
            self.received.append(received)
        run = received.headers.get("x-pa-run", "?")
        return completion(f"The answer for run {run}.", delay=self.delay)


def calls_per_attempt(received: Iterable[Received]) -> Counter[str]:
    """Requests per ``"<run_id>/<attempt>"`` (the ``X-PA-Run`` header); ``""`` when absent."""
    return Counter(r.headers.get("x-pa-run", "") for r in received)


def _handler_for(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real providers
        timeout = 5  # an idle keep-alive connection does not hold stop() for long

        def do_POST(self) -> None:
            arrived = time.monotonic()
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = server._next(Received(self.path, headers, body, arrived, time.time()))
            if reply.delay and server._stopping.wait(reply.delay):
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
