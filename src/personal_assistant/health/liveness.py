"""When a process counts as gone: it missed :data:`STALE_AFTER_BEATS` heartbeats (pure)."""

from __future__ import annotations

#: A process that has not beaten for this many heartbeat intervals is not live, and a run's
#: lease lasts this many intervals (plus a margin) from its worker's last beat.
STALE_AFTER_BEATS = 3


def stale_after_s(heartbeat_interval_s: float) -> float:
    """How long a process may be silent and still count as live."""
    return STALE_AFTER_BEATS * heartbeat_interval_s
