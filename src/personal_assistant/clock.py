"""The host's clock: the one function the project reads the time through.

Everything that needs "now" takes it as an argument or a ``clock`` callable whose default is
:func:`utcnow`; across hosts, leases and due times compare with the database's clock instead
(:mod:`personal_assistant.database.clock`).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)
