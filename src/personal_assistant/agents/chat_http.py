"""The HTTP exchanges of the OpenAI-compatible agent: pooled keep-alive connections, bounded
answers.

A worker keeps up to ``MAX_IN_FLIGHT`` model calls open at once on one event loop, so the CPU a
request costs the client decides how many it can hold. On this kind of machine (2 cores), with
2,000 requests in flight against a loopback server that answers after 2 s
(``python -m benchmarks.http_clients``): httpx spent 0.99 ms of CPU per request (600
requests/s of a 1,000/s ceiling), aiohttp 0.25 ms (840/s), and this client 0.11 ms (945/s).
It writes each request in one piece and parses the answer with httptools
(:mod:`~personal_assistant.agents.http_wire`); httpcore's pool walks every connection whenever
a request starts or ends (encode/httpcore#1035), and aiohttp builds a URL, a header multidict,
a payload object, timers and trace hooks for every request. The rest of the package (feeds,
webhooks) keeps httpx.

Each exchange is one POST of JSON. An answer is read whole but never beyond
:data:`ANSWER_LIMIT` bytes (after decompression); a redirect is returned as it is, never
followed; no cookie is kept (one pool carries every user's runs: what a provider or a proxy
sets while answering one user's run must not go out with another's). At most
``max_connections`` connections are open; an idle one is reused, newest first, and closed once
idle for :data:`KEEP_IDLE_S`. A host name is looked up once for the connections a burst opens
(:mod:`~personal_assistant.agents.addresses`). A request that finds its reused connection
closed by the server before any byte of the answer came is sent once more on a new connection
(the server dropped an idle connection as the request went out). ``HTTP(S)_PROXY`` and
``NO_PROXY`` are honoured, read once when the pool is made: plain HTTP goes to the proxy in
absolute form, HTTPS through a ``CONNECT`` tunnel. TLS verifies with the process's shared
context (:func:`~personal_assistant.outbound.http.tls_context`: certifi's bundle, or
``SSL_CERT_FILE``/``SSL_CERT_DIR``). The pool is made on first use, on the running loop, and
belongs to that loop until :meth:`ChatTransport.aclose`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import time
import urllib.request
from collections import deque
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlsplit

from personal_assistant.agents.addresses import Addresses, is_literal
from personal_assistant.agents.http_wire import (
    ACCEPT_ENCODING,
    Answer,
    AnswerTooLarge,
    Connection,
    InvalidAnswer,
    ServerDisconnected,
)
from personal_assistant.agents.timeouts import Deadlines
from personal_assistant.errors import AgentError

#: Bytes of an answer read at most: a chat completion of tens of thousands of tokens is a few
#: hundred KB; anything far beyond is a misbehaving endpoint, not a reply.
ANSWER_LIMIT = 4 * 1024 * 1024

#: An idle connection is closed after this long: servers drop theirs after 5 s to minutes, and
#: a request sent on one the server is closing has to be sent again.
KEEP_IDLE_S = 15.0


#: What stays as it is in a request's path and query: RFC 3986's reserved and unreserved
#: characters, and ``%`` (an escape already made is not made twice).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class InvalidHeader(ValueError):
    """A header that would break the request's head (a line break in its name or value)."""


class _Pool:
    """The connections of one event loop: a slot for each open one, the idle ones newest last."""

    def __init__(self, max_connections: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(max_connections)
        #: The exchanges' timeouts, one timer per 50 ms of deadlines (:mod:`.timeouts`).
        self.deadlines = Deadlines()
        self.idle: deque[tuple[float, Connection]] = deque()
        self.closed = False

    def take(self) -> Connection | None:
        """The newest idle connection still open; those idle too long are closed."""
        expired = time.monotonic() - KEEP_IDLE_S
        while self.idle and self.idle[0][0] < expired:
            self.idle.popleft()[1].close()
        while self.idle:
            connection = self.idle.pop()[1]
            if connection.reusable:
                return connection
            connection.close()
        return None

    def give(self, connection: Connection) -> None:
        if connection.reusable and not self.closed:  # closed: a call that ended after aclose
            self.idle.append((time.monotonic(), connection))
        else:
            connection.close()

    def close(self) -> None:
        self.closed = True
        while self.idle:
            self.idle.pop()[1].close()


class ChatTransport:
    """POSTs JSON to ``url`` on up to ``max_connections`` pooled keep-alive connections."""

    def __init__(self, url: str, *, max_connections: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the agent's URL must be http:// or https:// with a host")
        self._url = url
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._authority = parts.netloc.rpartition("@")[2]
        # As written, but for what a request line cannot hold (a space, say): percent-encoded.
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        self._path = path + (f"?{quote(parts.query, safe=_PATH_SAFE + '?')}" if parts.query else "")
        self._max_connections = max_connections
        self._addresses = Addresses()
        self._pool: _Pool | None = None
        self._proxy: Proxy | None = None

    async def post(self, payload: dict[str, Any], headers: dict[str, str], limit: float) -> Answer:
        """The answer to ``payload`` within ``limit`` seconds (at most
        :data:`~personal_assistant.agents.timeouts.SLOT_S` more), connecting included.

        Raises TimeoutError past the limit, OSError (ConnectionError, ssl.SSLError, ...) when
        the exchange fails, and a transient AgentError for an answer over
        :data:`ANSWER_LIMIT` bytes."""
        pool = self._pool_here()
        request = self._request(payload, headers)
        try:
            async with pool.deadlines.within(limit), pool.slots:
                reply = await self._exchange(pool, request)
        except AnswerTooLarge:
            raise AgentError(f"the agent's answer is longer than {ANSWER_LIMIT:,} bytes") from None
        return reply

    async def _exchange(self, pool: _Pool, request: bytes) -> Answer:
        connection = pool.take()
        reused = connection is not None
        while True:
            if connection is None:
                connection = await self._connect(pool.loop)
            try:
                reply = await connection.exchange(request, ANSWER_LIMIT)
            except ServerDisconnected as exc:
                connection.close()
                if not reused or exc.answered:
                    raise
                connection, reused = None, False  # dropped while idle: once more, on a new one
                continue
            except BaseException:
                connection.close()  # cancelled, timed out or failed: its answer is abandoned
                raise
            pool.give(connection)
            return reply

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Connection:
        proxy = self._proxy
        host, port = (proxy.host, proxy.port) if proxy else (self._host, self._port)
        tls = _tls_context() if self._tls else None
        connection = await self._open(loop, host, port, None if proxy else tls)
        if proxy is None or tls is None:
            return connection
        try:  # HTTPS through the proxy: a tunnel, then TLS with the origin inside it
            status = await connection.tunnel(self._connect_request(proxy))
            if status != 200:
                raise InvalidAnswer(f"the proxy refused the tunnel (HTTP {status})")
            assert connection.transport is not None
            connection.transport = await loop.start_tls(
                connection.transport, connection, tls, server_hostname=self._host
            )
        except BaseException:
            connection.close()
            raise
        return connection

    async def _open(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, tls: ssl.SSLContext | None
    ) -> Connection:
        """A connection to ``host``: its addresses in the resolver's order, the first that
        answers (:mod:`~personal_assistant.agents.addresses` says why they are kept)."""
        if is_literal(host):
            _, connection = await loop.create_connection(Connection, host, port, ssl=tls)
            return connection
        failure: OSError | None = None
        for family, kind, proto, address in await self._addresses.of(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
                _, connection = await loop.create_connection(
                    Connection, sock=sock, ssl=tls, server_hostname=host if tls else None
                )
                return connection
            except OSError as exc:
                sock.close()
                failure = exc
            except BaseException:
                sock.close()
                raise
        raise failure or OSError(f"no address found for {host}")

    def _request(self, payload: dict[str, Any], headers: dict[str, str]) -> bytes:
        body = json.dumps(payload).encode()
        proxy = self._proxy
        target = self._path
        if proxy is not None and not self._tls:  # plain HTTP: the request itself goes to the proxy
            target = f"http://{self._authority}{self._path}"
            headers = headers | proxy.headers
        for name, value in headers.items():
            if "\r" in name + value or "\n" in name + value:
                raise InvalidHeader(f"the agent's request header {name!r} holds a line break")
        lines = [f"POST {target} HTTP/1.1", f"Host: {self._authority}"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        lines.append(f"Accept-Encoding: {ACCEPT_ENCODING}")
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + body

    def _connect_request(self, proxy: Proxy) -> bytes:
        authority = f"{self._host}:{self._port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines.extend(f"{name}: {value}" for name, value in proxy.headers.items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _pool_here(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            self._pool = _Pool(self._max_connections)
            self._proxy = env_proxy(self._url)
        elif self._pool.loop is not loop:
            raise RuntimeError("the agent's connections belong to another event loop")
        return self._pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _tls_context() -> ssl.SSLContext:
    # The process's one verifying context (httpx's: certifi, or SSL_CERT_FILE/_DIR).
    from personal_assistant.outbound.http import tls_context

    return tls_context()


class Proxy(NamedTuple):
    url: str
    headers: dict[str, str]

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80


def env_proxy(url: str) -> Proxy | None:
    """The proxy the environment names for ``url`` (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``),
    its credentials moved into a ``Proxy-Authorization`` header; None for a direct connection."""
    parts = urlsplit(url)
    found = urllib.request.getproxies_environment().get(parts.scheme)
    if not found or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxy = urlsplit(found if "://" in found else f"http://{found}")
    if proxy.username is None:
        return Proxy(proxy.geturl(), {})
    user, password = unquote(proxy.username), unquote(proxy.password or "")
    login = base64.b64encode(f"{user}:{password}".encode()).decode()
    bare = proxy._replace(netloc=proxy.netloc.rpartition("@")[2]).geturl()
    return Proxy(bare, {"Proxy-Authorization": f"Basic {login}"})
