"""Server-sent events (``text/event-stream``): the wire format, and when a stream must end.

:func:`encode` writes one event (``event:``, ``id:``, ``data:`` lines). A stream polls the
database (:mod:`personal_assistant.app.events`) until the client goes away or the server shuts
down. uvicorn tells an application nothing of a shutdown: it asks each connection to close
after its answer (``keep_alive``) and waits for every answer to end, which an endless stream
never does. :class:`ServerClosing` (an ASGI middleware) hands the stream a probe of that flag,
so that it ends within a poll of a shutdown; under another server, a stream ends at
:data:`MAX_STREAM_SECONDS` at the latest and the client reconnects (``Last-Event-ID``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CLOSING", "HEARTBEAT", "MAX_STREAM_SECONDS", "ServerClosing", "closing", "encode"]

#: The scope entry holding the probe: true once the server is shutting down.
CLOSING = "personal_assistant.server_closing"
#: A comment line sent when nothing else was for this long, so that proxies keep the stream.
HEARTBEAT = b": heartbeat\n\n"
#: The longest a stream lasts; the client reconnects and resumes.
MAX_STREAM_SECONDS = 3600.0


def encode(kind: str, data: object, event_id: str) -> bytes:
    """One event: ``event: <kind>``, ``id: <event_id>``, ``data: <JSON on one line>``."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {kind}\nid: {event_id}\ndata: {text}\n\n".encode()


def closing(scope: Scope) -> Callable[[], bool]:
    """The probe :class:`ServerClosing` put in ``scope`` (never true without it)."""
    probe = scope.get(CLOSING)
    return probe if callable(probe) else (lambda: False)


class ServerClosing:
    """Puts in each HTTP scope a probe that turns true when uvicorn shuts the connection down
    (it clears the ``keep_alive`` of the request it answers: see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle = getattr(receive, "__self__", None)
        if scope["type"] == "http" and getattr(cycle, "keep_alive", None) is True:

            def probe() -> bool:
                return getattr(cycle, "keep_alive", True) is False

            scope = {**scope, CLOSING: probe}
        await self.app(scope, receive, send)
