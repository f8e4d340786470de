"""Fetch a calendar feed over HTTP(S), through the outbound policy.

:func:`fetch_feed` takes ``FETCH_TIMEOUT`` per step and three times that in all, reads at most
``MAX_FEED_BYTES`` once decoded (counted while decoding) and follows redirects. Every
connection, redirects included, is checked on the address it connects to
(:mod:`personal_assistant.outbound`). A failure is a :class:`FetchError` that says "could not
fetch" and its kind, never what the server answered. The request is conditional
(``If-None-Match``, ``If-Modified-Since``) when the caller passes the validators of the last
read (:func:`personal_assistant.calendars.periods.conditional` says when).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import httpx

from personal_assistant.errors import ValidationError
from personal_assistant.outbound import STRICT, Policy, RefusedDestination
from personal_assistant.outbound.decoding import BoundedDecoder, TooLarge, UnsupportedEncoding
from personal_assistant.outbound.http import guarded_client, tls_context

__all__ = [
    "CANNOT_FETCH",
    "FETCH_DEADLINE_FACTOR",
    "FETCH_TIMEOUT",
    "MAX_FEED_BYTES",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "Fetch",
    "FetchError",
    "Fetched",
    "fetch_feed",
    "fetcher",
]

FETCH_TIMEOUT = 20.0
FETCH_DEADLINE_FACTOR = 3
MAX_FEED_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
USER_AGENT = "personal-assistant-calendar-sync/1"
#: How every fetch failure begins; the rest is its kind, in our words (module doc).
CANNOT_FETCH = "could not fetch"


class FetchError(ValidationError):
    """A feed that could not be fetched, naming ``url``: "could not fetch: " and ``kind``, in
    our words (never the URL, nothing the server sent)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{CANNOT_FETCH}: {kind}", field="url")
        self.kind = kind


@dataclass(frozen=True)
class Fetched:
    """A feed's body (None: ``304 Not Modified``) and the validators to send next time."""

    body: bytes | None
    etag: str | None
    last_modified: str | None


Fetch = Callable[[str, str | None, str | None], Awaitable[Fetched]]


async def fetch_feed(
    url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    *,
    timeout: float = FETCH_TIMEOUT,
    max_bytes: int = MAX_FEED_BYTES,
    policy: Policy = STRICT,
) -> Fetched:
    """GET ``url`` through ``policy`` (by default nothing internal; the settings'
    ``outbound_policy`` in the services); raises a :class:`FetchError` (a ValidationError
    naming ``url``): "could not fetch: " and one of: timeout, connection failed (a closed port,
    a filtered one, an unreachable network or a name that does not resolve: not told apart),
    HTTP and the status, too large (decoded), too many redirects, invalid response; or a
    :class:`RefusedDestination` with "could not fetch: refused destination". Never the URL,
    and nothing the server sent.

    ``timeout`` bounds each step (connect, each read); the whole fetch, however slowly the
    server trickles, takes at most ``FETCH_DEADLINE_FACTOR`` times as long.
    """
    deadline = timeout * FETCH_DEADLINE_FACTOR
    try:
        async with asyncio.timeout(deadline):
            return await _get(
                url, etag, last_modified, timeout=timeout, max_bytes=max_bytes, policy=policy
            )
    except TimeoutError:
        raise FetchError(f"timeout (no complete answer within {deadline:g} s)") from None


def fetcher(policy: Policy) -> Fetch:
    """:func:`fetch_feed` under ``policy``: the ``fetch`` of
    :func:`~personal_assistant.calendars.sync.sync_feed` in a process whose settings allow some
    internal networks (``OUTBOUND_ALLOW``)."""
    return functools.partial(fetch_feed, policy=policy)


async def _get(
    url: str,
    etag: str | None,
    last_modified: str | None,
    *,
    timeout: float,
    max_bytes: int,
    policy: Policy,
) -> Fetched:
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/calendar, text/plain;q=0.9, */*;q=0.8",
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    tls = await asyncio.to_thread(tls_context)  # built once per process, never on the loop
    try:
        async with (
            guarded_client(policy, timeout=timeout, max_redirects=MAX_REDIRECTS, tls=tls) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code == 304:
                return Fetched(None, etag, last_modified)
            if response.status_code >= 300:
                raise FetchError(f"HTTP {response.status_code}{_phrase(response.status_code)}")
            body = await _read_capped(response, max_bytes)
            return Fetched(
                body,
                _validator(response.headers.get("etag"), 256),
                _validator(response.headers.get("last-modified"), 64),
            )
    except RefusedDestination as refused:
        raise RefusedDestination(
            refused.reason, message=f"{CANNOT_FETCH}: refused destination (not a public address)"
        ) from None
    except httpx.TimeoutException:
        raise FetchError(f"timeout (no answer within {timeout:g} s)") from None
    except httpx.TooManyRedirects:
        raise FetchError(f"too many redirects (more than {MAX_REDIRECTS})") from None
    except httpx.ConnectError:
        raise FetchError("connection failed") from None
    except (httpx.HTTPError, httpx.InvalidURL):  # protocol errors, unsupported redirects...
        raise FetchError("invalid response") from None


def _phrase(status: int) -> str:
    """The standard reason phrase of ``status`` (the server's own can say anything)."""
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return ""


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, decoded by us from the raw bytes with every layer bounded (a gzip bomb stops
    at ``max_bytes``, :mod:`personal_assistant.outbound.decoding`)."""
    too_large = FetchError(f"too large (more than {max_bytes:,} bytes)")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    try:
        decoder = BoundedDecoder(response.headers.get("content-encoding", ""), max_bytes)
        chunks: list[bytes] = []
        received = 0
        async for raw in response.aiter_raw():
            received += len(raw)
            if received > max_bytes:
                raise too_large
            chunks.append(decoder.feed(raw))
    except TooLarge:
        raise too_large from None
    except UnsupportedEncoding:
        raise FetchError("invalid response") from None
    return b"".join(chunks)


def _validator(value: str | None, limit: int) -> str | None:
    return value if value and len(value) <= limit else None
