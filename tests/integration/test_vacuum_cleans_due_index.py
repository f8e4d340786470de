"""Every VACUUM of the scheduler's tables cleans their indexes (issue 16, target 3).

A claim moves each task's ``next_run_at``: its old entry in the ``(status, next_run_at, id)``
index is dead, at the front of the index, where every idle tick reads. Since PostgreSQL 14 a
VACUUM skips the index pass when under 2 % of the table's pages hold dead rows, so after a
mass claim of 1 % of a large table (migration 0001's autovacuum fires at about that) the dead
entries stayed: at 10,000,000 tasks the idle tick read 508 buffers after VACUUM instead of
about 14, and took 1.65x its time at 10,000 tasks. ``vacuum_index_cleanup = on`` on the hot
tables (migration 0016) makes every VACUUM, autovacuum's included, clean them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy.dialects import postgresql

from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import _NEXT_DUE, TaskScheduler
from support.stack import settings_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: Enough tasks that the claimed ones' pages are well under 2 % of the table's.
TASKS = 100_000
DUE = 1_000
DUE_INDEX = "ix_ai_tasks_status_next_run_at_id"

_INSERT_TASKS = b"""
INSERT INTO ai_tasks (
    user_id, title, description, task_type, schedule_kind, schedule, timezone, next_run_at,
    status, ai_context, notification_channels, catch_up, max_retries, consecutive_failures,
    created_at, updated_at)
SELECT (SELECT min(id) FROM users), 'task ' || g, 'Summarise.', 'reminder', 'daily',
    json_build_object('kind', 'daily', 'times', json_build_array('09:00:00'), 'timezone', 'UTC'),
    'UTC',
    CASE WHEN g <= %(due)s THEN %(now)s
         ELSE %(now)s + interval '1 hour' + g * interval '1 second' END,
    'active', '{}'::json, '["in_app"]'::json, 'once', 3, 0, now(), now()
FROM generate_series(1, %(tasks)s) AS g
"""

_EXPLAIN = (
    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
    + str(_NEXT_DUE.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
).encode()


def _index_buffers(url: str) -> int:
    """Shared buffers the idle tick's read touches in the tasks' due index."""
    with psycopg.connect(url) as conn:
        row = conn.execute(_EXPLAIN).fetchone()
    assert row is not None
    scans = list(_nodes(row[0][0]["Plan"], DUE_INDEX))
    assert len(scans) == 1, row
    return int(scans[0].get("Shared Hit Blocks", 0)) + int(scans[0].get("Shared Read Blocks", 0))


def _nodes(node: dict[str, Any], index: str) -> Iterator[dict[str, Any]]:
    if node.get("Index Name") == index:
        yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child, index)


def _sql(url: str, *statements: bytes) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement, {"now": NOW, "due": DUE, "tasks": TASKS})


def _claim_everything_due(url: str) -> int:
    async def go() -> int:
        engine = make_async_engine(url)
        try:
            settings = settings_for({"DATABASE_URL": url, "SCHEDULER_BATCH": "500"})
            scheduler = TaskScheduler(engine, settings, _no_publish)
            claimed = 0
            while (report := await scheduler.claim_due(NOW)).tasks:
                claimed += report.tasks
            return claimed
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _no_publish(run_ids: Sequence[int]) -> None:
    return None


def test_a_vacuum_after_a_small_mass_claim_leaves_the_idle_tick_as_cheap_as_before(
    database_url: str,
) -> None:
    _sql(
        database_url,
        b"INSERT INTO users (display_name, timezone, created_at) VALUES ('many', 'UTC', now())",
        _INSERT_TASKS,
        b"VACUUM (ANALYZE) ai_tasks, task_runs",
    )
    fresh = _index_buffers(database_url)

    assert _claim_everything_due(database_url) == DUE
    # The runs are finished, as the workers would leave them.
    _sql(
        database_url,
        b"UPDATE task_runs SET state = 'succeeded', finished_at = queued_at, "
        b"lease_expires_at = NULL",
        b"VACUUM ai_tasks, task_runs",
    )
    after = _index_buffers(database_url)

    # Before migration 0016 the VACUUM skipped the index pass (the claim's dead rows lie on
    # about 1 % of the table's pages) and the tick read the 1,000 dead entries' leaf pages:
    # in our runs 9 to 36 buffers instead of 4.
    assert after <= fresh + 1, (fresh, after)
