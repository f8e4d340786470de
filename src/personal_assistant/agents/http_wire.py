"""One HTTP/1.1 connection of the agent: a request written whole, its answer parsed as it comes.

The answer is parsed by httptools (llhttp, Node.js's parser, in C): status line, headers,
``Content-Length``, chunked or read-until-close bodies, keep-alive. The body is decompressed
(gzip, deflate) as it arrives and never kept beyond the exchange's limit, counted after
decompression. This module knows bytes and one socket; the pool, proxies and TLS are
:mod:`~personal_assistant.agents.chat_http`'s.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import NamedTuple, cast

import httptools
import httpx

#: What the agent accepts: every server can send these, and the limit still counts the result.
ACCEPT_ENCODING = "gzip, deflate"


class ServerDisconnected(ConnectionError):
    """The connection closed before the answer was whole; ``answered`` says whether any byte of
    the answer had come (nothing had: the request may be sent again on a new connection)."""

    def __init__(self, answered: bool) -> None:
        super().__init__("the server closed the connection before its answer was whole")
        self.answered = answered


class InvalidAnswer(ConnectionError):
    """What the server sent is not an HTTP/1.1 answer this client reads."""


class AnswerTooLarge(Exception):
    """The answer is longer than the exchange's limit (declared, or as it came)."""


class Answer(NamedTuple):
    """An HTTP answer read whole: its status, headers (httpx's, looked up without regard to
    case) and body."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400 and "Location" in self.headers


def _decoder(encoding: str) -> zlib._Decompress | None:
    """A decompressor for ``Content-Encoding: encoding``; None for none."""
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":  # zlib-wrapped, as the RFC says (raw is tried on a wrong header)
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise InvalidAnswer(f"the answer's Content-Encoding {encoding!r} is not one it was offered")


class Connection(asyncio.Protocol):
    """A client connection that carries one exchange at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Answer] | None = None
        self._tunnel: asyncio.Future[int] | None = None
        self._buffer = b""
        self._limit = 0
        # One parser for the connection's answers, one after another (a parser costs more to
        # make than an answer costs to parse).
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._pairs: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []
        self._size = 0
        self._decoder: zlib._Decompress | None = None
        self._raw: zlib._Decompress | None = None
        self._encoding = ""
        self._until_close = False
        self._status = 0
        self._answered = False
        self._complete = False
        self._keep_alive = False
        self._failure: Exception | None = None

    # --- What the pool calls ----------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Open, idle, and its last answer allowed the connection to carry another."""
        return not self.closed and self._waiter is None and self._keep_alive

    def exchange(self, request: bytes, limit: int) -> asyncio.Future[Answer]:
        """Send ``request`` (head and body) and wait for the whole answer of at most ``limit``
        bytes; the future fails with ServerDisconnected, InvalidAnswer or AnswerTooLarge."""
        if self.transport is None or self.closed or self._waiter is not None:
            raise RuntimeError("the connection cannot carry an exchange now")
        self._reset()
        self._limit = limit
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return waiter

    def tunnel(self, request: bytes) -> asyncio.Future[int]:
        """Send a proxy's ``CONNECT`` and wait for its answer's status (what follows the answer's
        head belongs to the tunnel, so llhttp, which would read it as a body, does not parse it)."""
        assert self.transport is not None
        self._tunnel = tunnel = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return tunnel

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # unread bytes of an abandoned answer must not be waited for

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always asyncio's class (uvloop's is its own).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel_data(data)
            return
        if self._waiter is None:  # bytes nobody asked for: the connection is not to be trusted
            self.close()
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self._complete:
                self._failure = self._failure or InvalidAnswer(f"the answer is not HTTP ({exc})")
            self._keep_alive = False  # bytes after a whole answer spoil only the connection
        if self._failure is not None:
            self._fail(self._failure)
        elif self._complete:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._tunnel is not None and not self._tunnel.done():
            self._tunnel.set_exception(ServerDisconnected(bool(self._buffer)))
        if self._waiter is None:
            return
        if self._until_close and exc is None and self._failure is None:
            self._complete = True  # a body without a length ends with its connection
            self._finish()
        else:
            self._fail(ServerDisconnected(self._answered))

    # --- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # more than the one answer asked for: the answer stands, not the line
            self._keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._pairs.append((name, value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        headers = dict((name.lower(), value) for name, value in reversed(self._pairs))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limit:
            self._failure = AnswerTooLarge()
            return
        try:
            self._encoding = headers.get(b"content-encoding", b"").decode().strip().lower()
            self._decoder = _decoder(self._encoding)
        except (InvalidAnswer, UnicodeDecodeError) as exc:
            self._failure = InvalidAnswer(str(exc))
            return
        self._until_close = (
            declared is None
            and b"chunked" not in headers.get(b"transfer-encoding", b"").lower()
            and self._status >= 200
            and self._status not in (204, 304)
        )

    def on_body(self, body: bytes) -> None:
        if self._failure is not None:
            return
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body, self._limit - self._size + 1)
            except zlib.error:
                if self._encoding != "deflate" or self._size or self._raw is not None:
                    self._failure = InvalidAnswer("the answer's compressed body is corrupt")
                    return
                # "deflate" sent raw, without the zlib header, as some servers do
                self._decoder = self._raw = zlib.decompressobj(-zlib.MAX_WBITS)
                self.on_body(body)
                return
            if self._decoder.unconsumed_tail:
                self._failure = AnswerTooLarge()
                return
        self._keep(body)

    def _keep(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._limit:
            self._failure = AnswerTooLarge()
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (103 Early Hints): the real one follows
            self._pairs = []
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    # --- Ending an exchange -----------------------------------------------------------------

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if self._decoder is not None and self._failure is None:
            self._keep(self._decoder.flush())
        if waiter is None or waiter.done():
            return
        if self._failure is not None:
            waiter.set_exception(self._failure)
            self.close()
            return
        waiter.set_result(Answer(self._status, httpx.Headers(self._pairs), b"".join(self._chunks)))
        self._chunks = []

    def _fail(self, failure: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self._keep_alive = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)
        self.close()

    def _tunnel_data(self, data: bytes) -> None:
        assert self._tunnel is not None
        self._buffer += data
        head, found, rest = self._buffer.partition(b"\r\n\r\n")
        if not found:
            if len(self._buffer) > 64 * 1024:
                self._tunnel.set_exception(InvalidAnswer("the proxy's answer has no end"))
                self.close()
            return
        tunnel, self._tunnel, self._buffer = self._tunnel, None, b""
        parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if rest or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            tunnel.set_exception(InvalidAnswer("the proxy's answer to CONNECT is not HTTP"))
            self.close()
            return
        tunnel.set_result(int(parts[1]))
