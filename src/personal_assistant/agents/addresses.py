"""Where a host name leads, asked once for the many connections a burst opens.

The agent's pool opens a connection for each call in flight that finds none idle: a worker
starting 2,000 runs at once opens up to 2,000. asyncio resolves the host for each connection,
in the loop's default executor (a few threads, shared with the rest of the process), so a burst
queued that many lookups of one name. aiohttp, which the agent used before its own client,
kept the resolver's answers for 10 s (``ttl_dns_cache``). :class:`Addresses` does too: one
lookup at a time per host and port, whose answer the connections opened meanwhile share, kept
:data:`KEEP_S`. A failed lookup is not kept; an address literal is not looked up at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from functools import lru_cache
from typing import Any

#: Seconds a lookup's answer is used (aiohttp's default): a change of address is seen soon,
#: and a burst asks once.
KEEP_S = 10.0

#: What a connection needs of one address: ``(family, type, proto, sockaddr)``.
Address = tuple[int, int, int, Any]


@lru_cache(maxsize=64)
def is_literal(host: str) -> bool:
    """Is ``host`` an IP address written out (nothing to look up)? Asked for every connection
    a burst opens, of the same few hosts: answered once each (parsing it cost 1.2 % of the
    worker's event loop at 2,000 runs in flight)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Addresses:
    """The addresses of each ``(host, port)``, looked up on the running loop and kept a while."""

    def __init__(self, keep_s: float = KEEP_S) -> None:
        self._keep_s = keep_s
        self._known: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._asking: dict[tuple[str, int], asyncio.Task[list[Address]]] = {}

    async def of(self, host: str, port: int) -> list[Address]:
        """The addresses to try, in the resolver's order; raises OSError (``socket.gaierror``)
        when the name cannot be resolved."""
        key = (host, port)
        known = self._known.get(key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.get_running_loop().create_task(self._look_up(host, port))
            asking.add_done_callback(_seen)  # a failure no call waited for is not reported
            self._asking[key] = asking
        # A call that gives up (its timeout) leaves the lookup to the others.
        return await asyncio.shield(asking)

    async def _look_up(self, host: str, port: int) -> list[Address]:
        key = (host, port)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        finally:
            del self._asking[key]
        found: list[Address] = [
            (int(family), int(kind), proto, address) for family, kind, proto, _, address in infos
        ]
        self._known[key] = (time.monotonic() + self._keep_s, found)
        return found


def _seen(task: asyncio.Task[list[Address]]) -> None:
    if not task.cancelled():
        task.exception()
