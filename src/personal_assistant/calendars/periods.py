"""The full-read period of a feed's syncs (pure): when a sync reads a feed in full, and how long
the refusal of a body stands.

A ``304 Not Modified`` says the feed did not change, but the horizon moves with time, and only
a full read finds the occurrences of recurring events that have come into it: the first sync of
each :data:`FULL_READ_EVERY` period sends no validators (:func:`conditional`). A body refused
for its content is remembered by its digest (:func:`refusal_digest`): while the same body comes
back within the same period, it is not parsed again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

__all__ = ["FULL_READ_EVERY", "conditional", "refusal_digest"]

#: At least one unconditional read per period (see the module doc).
FULL_READ_EVERY = timedelta(hours=6)


def conditional(last_synced_at: datetime | None, now: datetime) -> bool:
    """Send the validators? Not for the first sync of a ``FULL_READ_EVERY`` period (pure)."""
    if last_synced_at is None:
        return False
    return _period(last_synced_at) == _period(now)


def _period(moment: datetime) -> int:
    return int(moment.timestamp() // FULL_READ_EVERY.total_seconds())


def refusal_digest(body: bytes, *, timezone: str, horizon_days: int, now: datetime) -> str:
    """sha256 (hex) of a fetched body and of what its refusal depends on (pure).

    The owner's zone, the horizon and the ``FULL_READ_EVERY`` period of ``now``: the same body
    refused in the same period would be refused again for the same reason; in the next period
    it is read again, because the horizon moved (a feed over the cap can come under it).
    """
    digest = hashlib.sha256(f"{_period(now)}|{timezone}|{horizon_days}|".encode())
    digest.update(body)
    return digest.hexdigest()
