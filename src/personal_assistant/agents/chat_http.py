"""The HTTP exchanges of the OpenAI-compatible agent: one pooled aiohttp session, bounded answers.

A worker keeps up to ``MAX_IN_FLIGHT`` model calls open at once on one event loop, so the CPU a
request costs the client decides how many it can hold. On this kind of machine (2 cores), with
2,000 requests in flight against a loopback server that answers after 2 s, httpx spent 0.74 ms
of CPU per request (683 requests/s of a 1,000/s ceiling) and aiohttp 0.18 ms (890/s)
(``python -m benchmarks.http_clients``): httpcore's pool walks every connection whenever a
request starts or ends (encode/httpcore#1035). The rest of the package (feeds, webhooks) keeps
httpx.

An answer is read whole but never beyond :data:`ANSWER_LIMIT` bytes (after decompression); a
redirect is returned as it is, never followed. As with httpx, ``HTTP(S)_PROXY`` and
``NO_PROXY`` are honoured, read once when the session is made (aiohttp's own ``trust_env``
reads them, and ``~/.netrc``, in a thread on every request: 18 % of a busy worker's samples);
no cookie is kept (one session carries every user's runs: what a provider or a proxy sets
while answering one user's run must not go out with another's, and the jar's bookkeeping
cost CPU on every request);
TLS verifies with the process's shared context (:func:`~personal_assistant.outbound.http.
tls_context`: certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``). The session is
made on first use, on the running loop, and belongs to that loop until
:meth:`ChatTransport.aclose`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import aiohttp

from personal_assistant.errors import AgentError

#: The body is encoded here: aiohttp's ``json=`` wraps it in a payload object of its own.
_JSON = {"Content-Type": "application/json"}

#: Bytes of an answer read at most: a chat completion of tens of thousands of tokens is a few
#: hundred KB; anything far beyond is a misbehaving endpoint, not a reply.
ANSWER_LIMIT = 4 * 1024 * 1024


class Answer(NamedTuple):
    """An HTTP answer read whole: its status, headers (case-insensitive) and body."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400 and "Location" in self.headers


class ChatTransport:
    """POSTs JSON to ``url`` on up to ``max_connections`` pooled keep-alive connections."""

    def __init__(self, url: str, *, max_connections: int) -> None:
        self._url = url
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proxy: Proxy | None = None

    async def post(self, payload: dict[str, Any], headers: dict[str, str], limit: float) -> Answer:
        """The answer to ``payload`` within ``limit`` seconds, connecting included.

        Raises TimeoutError past the limit, :class:`aiohttp.ClientError` when the exchange
        fails, and a transient AgentError for an answer over :data:`ANSWER_LIMIT` bytes."""
        session = self._session_here()
        proxy = self._proxy
        if proxy is not None and not self._url.startswith("https:"):
            headers = headers | proxy.headers  # plain HTTP: the request itself goes to the proxy
        async with asyncio.timeout(limit):
            async with session.post(
                self._url,
                data=json.dumps(payload).encode(),
                headers=headers | _JSON,
                allow_redirects=False,
                proxy=proxy.url if proxy else None,
                proxy_headers=proxy.headers if proxy else None,  # HTTPS: on the CONNECT
            ) as response:
                content = await read_bounded(response, ANSWER_LIMIT)
                return Answer(response.status, response.headers, content)

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None:
            # The process's one verifying context (httpx's: certifi, or SSL_CERT_FILE/_DIR).
            from personal_assistant.outbound.http import tls_context

            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=tls_context())
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),  # each call sets its own limit
                cookie_jar=aiohttp.DummyCookieJar(),  # module doc: no cookie kept
            )
            self._loop = loop
            self._proxy = env_proxy(self._url)
        elif self._loop is not loop:
            raise RuntimeError("the agent's connections belong to another event loop")
        return self._session

    async def aclose(self) -> None:
        session, self._session, self._loop = self._session, None, None
        if session is not None:
            await session.close()


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``response``; a transient AgentError once it passes ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> AgentError:
    return AgentError(f"the agent's answer is longer than {limit:,} bytes")


class Proxy(NamedTuple):
    url: str
    headers: dict[str, str]


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
