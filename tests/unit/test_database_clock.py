"""The database clock: this host's clock plus the offset measured against the server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from personal_assistant.database.clock import DatabaseClock


def test_database_clock_reads_the_offset_halfway_through_the_round_trip() -> None:
    clock = DatabaseClock(host=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    sent = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    clock.observe(sent, sent + timedelta(minutes=2, seconds=1), sent + timedelta(seconds=2))
    assert clock.offset == timedelta(minutes=2)
    assert clock() == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
