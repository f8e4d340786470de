"""Real servers on loopback for notification tests: an HTTP webhook receiver and an SMTP server.

:class:`HookServer` answers each POST with the next scripted status (200 once the script is
empty) and records the JSON bodies it answered 2xx to (``received``) and every request
(``requests``, with its ``Idempotency-Key`` header in ``keys``); a request whose sender went
away before its whole body came (a worker killed mid-send) is not answered nor recorded.
:class:`SmtpServer` is
aiosmtpd's ``Controller`` on a free port, recording each message. Both are context managers
that stop their threads and close their sockets.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections import deque
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class HookServer:
    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.statuses = deque(statuses)
        self.requests: list[tuple[str, int]] = []
        self.received: list[Any] = []
        #: The ``Idempotency-Key`` header of every request, in order (None: absent).
        self.keys: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request (a killed worker)
                    self.close_connection = True
                    return
                with server._lock:
                    status = server.statuses.popleft() if server.statuses else 200
                    server.requests.append((self.path, status))
                    server.keys.append(self.headers.get("Idempotency-Key"))
                    if 200 <= status < 300:
                        server.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.port = int(self._server.server_address[1])

    def url(self, path: str = "/notify", scheme: str = "json") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> HookServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"


class SmtpServer:
    """``login=(user, password)``: the server requires that login (AUTH without TLS, loopback)."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self._inbox = _Inbox()
        self._login = login
        self.logins: list[tuple[str, bool]] = []  # (user, accepted) per AUTH attempt
        auth: dict[str, Any] = {}
        if login is not None:
            auth = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=self.port, **auth)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        user = data.login.decode() if isinstance(data, LoginPassword) else ""
        ok = isinstance(data, LoginPassword) and (user, data.password.decode()) == self._login
        self.logins.append((user, ok))
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535

    @property
    def messages(self) -> list[EmailMessage]:
        return self._inbox.messages

    def url(self, to: str = "lou@example.org", login: tuple[str, str] | None = None) -> str:
        """Plain SMTP (no TLS: ``mode=insecure``), as Apprise's mailto:// spells it."""
        user = f"{login[0]}:{login[1]}@" if login else ""
        return f"mailto://{user}127.0.0.1:{self.port}?mode=insecure&from=pa@example.org&to={to}"

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._controller.stop()
