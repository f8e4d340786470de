"""A calendar feed on loopback: a real HTTP server whose ICS body a test replaces at will.

``GET`` answers the current body (``text/calendar``) with an ``ETag`` derived from it, and
``304 Not Modified`` when the request's ``If-None-Match`` names that ETag. ``fail_next(500)``
scripts statuses for the next requests; ``hang = True`` makes requests wait, without answering,
until the server closes (a client timeout's test). Every request is recorded in ``requests``
(path, status, If-None-Match). A context manager that stops its threads and closes its socket.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    status: int
    if_none_match: str | None


class IcsServer:
    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.hang = False
        self.requests: list[Request] = []
        self._statuses: deque[int] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.hang:
                    server._closing.wait(timeout=60)
                    server._record(self.path, 0, self.headers.get("if-none-match"))
                    return
                status, payload, etag = server._answer(self.headers.get("if-none-match"))
                server._record(self.path, status, self.headers.get("if-none-match"))
                self.send_response(status)
                if etag is not None:
                    self.send_header("ETag", etag)
                if status == 200:
                    self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.port = int(self._server.server_address[1])

    def url(self, path: str = "/calendar.ics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    @property
    def statuses(self) -> list[int]:
        with self._lock:
            return [r.status for r in self.requests]

    def _answer(self, if_none_match: str | None) -> tuple[int, bytes, str | None]:
        with self._lock:
            if self._statuses:
                return self._statuses.popleft(), b"server error\n", None
            body = self.body
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        if if_none_match == etag:
            return 304, b"", etag
        return 200, body, etag

    def _record(self, path: str, status: int, if_none_match: str | None) -> None:
        with self._lock:
            self.requests.append(Request(path, status, if_none_match))

    def __enter__(self) -> IcsServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def vcalendar(*events: str) -> bytes:
    """An iCalendar document of ``events`` (each from :func:`vevent`), CRLF line endings."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//personal-assistant tests//EN", *events]
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


def vevent(uid: str, summary: str, *properties: str) -> str:
    """A ``VEVENT`` with ``properties`` given as content lines (``DTSTART;TZID=...:...``)."""
    return "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"SUMMARY:{summary}",
         *properties, "END:VEVENT"]
    )  # fmt: skip
