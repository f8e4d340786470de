"""An httpx client whose every connection obeys the outbound policy, checked at connect time.

Checking a URL's host before the request is not enough: the name can resolve to a public
address when checked and to ``127.0.0.1`` a moment later when the client connects (DNS
rebinding), and a redirect can send the client anywhere. So the check lives where connections
are made. :class:`GuardedBackend` is an httpcore network backend: for each new connection it
resolves the host itself, checks every address (:meth:`Policy.check
<personal_assistant.outbound.policy.Policy.check>`), then connects to an address it checked, by
IP. TLS still verifies, and sends as SNI, the URL's host name (httpcore takes both from the
request's origin, not from the address connected to). Every redirect that leaves the origin
opens a new connection, so it is checked the same way.

Connection failures read alike: a closed port (refused at once), a filtered one (the connect
times out), an unreachable network and a name that does not resolve all raise
``httpcore.ConnectError("connection failed")``, so a caller cannot tell one from another and
a fetch cannot map a network. A refused destination raises :class:`RefusedDestination
<personal_assistant.outbound.policy.RefusedDestination>` before any connection is attempted.

The client ignores the environment's proxies (``trust_env=False``): a proxy would connect on
the client's behalf, where no check can see the address it reaches.
"""

from __future__ import annotations

import functools
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence

import anyio
import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

from personal_assistant.outbound.policy import Policy, RefusedDestination

#: Resolves ``(host, port)`` to the IP addresses (as text) a connection may use.
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]
#: httpcore's own alias (``httpcore._backends.base.SOCKET_OPTION``), spelled out.
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

CONNECTION_FAILED = "connection failed"


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying TLS context every guarded client of this process shares.

    Building one loads the whole CA bundle: 15-30 ms of CPU holding the GIL. Built per fetch,
    on the event loop that runs every user's runs, it made another user's lateness p99 2.2 s
    instead of 0.1 s while a worker synced hostile feeds (``tests/chaos/test_hostile_feeds.py``).
    A context is safe to share between connections; call this off the loop the first time
    (:func:`guarded_client` does not).
    """
    return httpx.create_ssl_context()


async def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (an IP literal resolves to itself), without blocking the loop."""
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


class GuardedBackend(AsyncNetworkBackend):
    """Resolves, checks every address against ``policy``, connects to a checked one."""

    def __init__(
        self,
        policy: Policy,
        *,
        resolver: Resolve = resolve,
        inner: AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver
        self._inner = httpcore.AnyIOBackend() if inner is None else inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
        except (OSError, TimeoutError):  # gaierror is an OSError: told apart from nothing else
            raise httpcore.ConnectError(CONNECTION_FAILED) from None
        self._policy.check(host, addresses)
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError, TimeoutError):
                continue  # the next address; failures are not told apart (module doc)
        raise httpcore.ConnectError(CONNECTION_FAILED)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        raise RefusedDestination("a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool that connects through ``backend``.

    httpx offers no argument for httpcore's ``network_backend``: the pool its constructor built
    is replaced by one with the same defaults (limits, HTTP/1.1, a verifying TLS context) and
    the guarded backend; request conversion and error mapping stay httpx's own.
    """

    def __init__(self, backend: GuardedBackend, tls: ssl.SSLContext) -> None:
        super().__init__(verify=tls, trust_env=False)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_client(
    policy: Policy,
    *,
    timeout: float,
    max_redirects: int,
    resolver: Resolve = resolve,
    inner: AsyncNetworkBackend | None = None,
    tls: ssl.SSLContext | None = None,
    **options: typing.Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` following up to ``max_redirects`` redirects, each connection
    checked against ``policy`` (module doc). ``tls`` defaults to the process's shared
    :func:`tls_context`; ``resolver`` and ``inner`` (the backend that really connects) are for
    tests; ``options`` go to the client (headers...)."""
    backend = GuardedBackend(policy, resolver=resolver, inner=inner)
    return httpx.AsyncClient(
        transport=_GuardedTransport(backend, tls_context() if tls is None else tls),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=max_redirects,
        trust_env=False,
        **options,
    )
