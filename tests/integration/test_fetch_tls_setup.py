"""A feed fetch does not build a TLS context on the worker's event loop.

A verifying TLS context loads the whole CA bundle: 15-30 ms of CPU, holding the GIL, on this
kind of machine. The fetch built two for every feed (one in httpx's transport, one in the
guarded connection pool), on the event loop that holds every other user's runs: the hostile
feeds chaos row (99 syncs) measured another user's lateness p99 at 2.2 s instead of 0.1 s, and
py-spy put half of the loop's busy time in ``ssl.create_default_context``. One context per
process now serves every fetch (contexts are safe to share between connections), built off
the loop.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from personal_assistant.calendars import fetch as calendar_fetch
from personal_assistant.outbound import Policy, parse_allow
from support.ics_server import IcsServer, vcalendar, vevent

LOCAL_ONLY = Policy(parse_allow("127.0.0.1/32"))
FETCHES = 5


@pytest.fixture
def ca_loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of the thread of each CA bundle load (``SSLContext.load_verify_locations``)."""
    threads: list[str] = []
    load = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        threads.append(threading.current_thread().name)
        load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    yield threads


def test_fetches_share_one_tls_context_built_off_the_loop(ca_loads: list[str]) -> None:
    body = vcalendar(vevent("standup", "Standup", "DTSTART:20270105T090000Z"))

    async def fetch_all(url: str) -> list[bytes | None]:
        loop_thread = threading.current_thread().name
        fetched = [await calendar_fetch.fetch_feed(url, policy=LOCAL_ONLY) for _ in range(FETCHES)]
        assert loop_thread not in ca_loads, ca_loads
        return [f.body for f in fetched]

    with IcsServer(body) as server:
        bodies = asyncio.run(fetch_all(server.url()))
    assert bodies == [body] * FETCHES
    assert len(ca_loads) <= 1, ca_loads
