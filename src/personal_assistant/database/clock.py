"""The database's clock, read on this host: leases and due times compare with one time.

Every process writes lease ends (``now + lease``) that other processes compare with their own
``now``; a scheduler claims what is due by its ``now``. Each host's clock is its own: a worker
two minutes behind hands out leases that the others find expired two minutes early (its live
runs reaped, their agent called twice), a scheduler two minutes ahead fires every task two
minutes early. So every process takes "now" from PostgreSQL's clock, the one clock they share:
:class:`DatabaseClock` is this host's clock plus the offset measured against the server
(``clock_timestamp()``, halfway through the round trip), refreshed by whoever queries the
database anyway (the heartbeat, the scheduler). Reading it costs no round trip.

On SQLite (the embedded default) the database is a file on this host: the offset is zero.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.clock import utcnow

__all__ = ["SKEW_WARNING", "DatabaseClock"]

log = logging.getLogger(__name__)

#: An offset larger than this is logged: the host's clock should be fixed (NTP).
SKEW_WARNING = timedelta(seconds=1)
_SERVER_NOW = text("SELECT clock_timestamp()")


class DatabaseClock:
    """``now()`` as the database server has it; callable like any clock of this package."""

    def __init__(self, host: Callable[[], datetime] = utcnow) -> None:
        self._host = host
        self._offset = timedelta(0)
        self._measured_at: float | None = None  # monotonic
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self._host() + self._offset

    @property
    def offset(self) -> timedelta:
        """The server's clock minus this host's, as last measured."""
        return self._offset

    def age(self) -> float | None:
        """Seconds since the last measurement; None if never measured."""
        measured = self._measured_at
        return None if measured is None else time.monotonic() - measured

    def observe(self, sent: datetime, server: datetime, received: datetime) -> None:
        """Record one reading: the server said ``server`` between ``sent`` and ``received``."""
        offset = server - (sent + (received - sent) / 2)
        with self._lock:
            previous, self._offset = self._offset, offset
            self._measured_at = time.monotonic()
        if abs(offset) > SKEW_WARNING and abs(offset - previous) > SKEW_WARNING:
            log.warning(
                "event=clock_skew offset_s=%.3f detail=this host's clock differs from the "
                "database's; times are taken from the database",
                offset.total_seconds(),
            )

    def measure(self, conn: Connection) -> None:
        """Read the server's clock on ``conn`` (a sync connection); a no-op on SQLite."""
        if conn.dialect.name != "postgresql":
            self._mark_local()
            return
        sent = self._host()
        server = conn.execute(_SERVER_NOW).scalar_one()
        self.observe(sent, server, self._host())

    async def ameasure(self, conn: AsyncConnection) -> None:
        """The same on an async connection."""
        if conn.dialect.name != "postgresql":
            self._mark_local()
            return
        sent = self._host()
        server = (await conn.execute(_SERVER_NOW)).scalar_one()
        self.observe(sent, server, self._host())

    def _mark_local(self) -> None:
        with self._lock:
            self._measured_at = time.monotonic()
