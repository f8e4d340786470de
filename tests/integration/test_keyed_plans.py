"""Statements that name their runs by id find them by key, whatever the statistics say.

A burst queues thousands of runs between two ANALYZEs: the statistics still say that almost no
run is ``queued`` (or ``running``), so PostgreSQL judged ``state = 'queued'`` the narrower
condition and walked the ``(state, lease_expires_at)`` index through every queued run of the
burst for each message's 100 runs (78 ms a claim instead of 1 ms; the end-to-end benchmark ran
35 % slower on a database that had seen one burst before). Each statement here is captured as
the worker sends it and explained with its own parameters, on such stale statistics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.agents.base import AgentReply
from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.database.engine import make_async_engine, make_sync_engine
from personal_assistant.health import heartbeat
from personal_assistant.runs import claims, dispatch, fair_store, results
from personal_assistant.runs.executor import Outcome
from personal_assistant.runs.fair_dispatch import Limits

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TASKS = 3_000
BATCH = 100
STATE_INDEX = "ix_task_runs_state_lease_expires_at"
TASK_INDEX = "uq_task_runs_task_id_scheduled_for"

_SETUP = [
    "INSERT INTO users (display_name, timezone, created_at) VALUES ('burst', 'UTC', now())",
    """
    INSERT INTO ai_tasks (
        user_id, title, description, task_type, schedule_kind, schedule, timezone, next_run_at,
        status, ai_context, notification_channels, catch_up, max_retries, consecutive_failures,
        created_at, updated_at)
    SELECT (SELECT min(id) FROM users), 'task ' || g, 'Summarise.', 'automated_task', 'daily',
        json_build_object('kind', 'daily', 'times', json_build_array('09:00:00'),
                          'timezone', 'UTC'),
        'UTC', :now, 'active', '{}'::json, '["in_app"]'::json, 'once', 3, 0, now(), now()
    FROM generate_series(1, :tasks) AS g
    """,
    # Yesterday's runs, all succeeded: what ANALYZE sees.
    """
    INSERT INTO task_runs (task_id, user_id, scheduled_for, state, attempt, queued_at,
                           finished_at, result)
    SELECT id, user_id, :now - interval '1 day', 'succeeded', 1, :now - interval '1 day',
           :now - interval '1 day', 'done'
    FROM ai_tasks
    """,
    "ANALYZE task_runs",
    # Today's burst, queued after the statistics were taken.
    """
    INSERT INTO task_runs (task_id, user_id, scheduled_for, state, attempt, queued_at,
                           lease_expires_at, published_at)
    SELECT id, user_id, :now, 'queued', 0, :now, :now + interval '1 minute', :now
    FROM ai_tasks
    """,
]


def _queued(database_url: str, statements: list[str]) -> Iterator[list[int]]:
    engine = make_sync_engine(database_url)
    try:
        for statement in statements:
            with engine.begin() as conn:
                conn.execute(text(statement), {"now": NOW, "tasks": TASKS})
        with engine.connect() as conn:
            yield list(
                conn.execute(text("SELECT id FROM task_runs WHERE state = 'queued' ORDER BY id"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()


@pytest.fixture
def burst(database_url: str) -> Iterator[list[int]]:
    """The ids of the burst's queued runs, on statistics that know none of them."""
    yield from _queued(database_url, _SETUP)


@pytest.fixture
def first_burst(database_url: str) -> Iterator[list[int]]:
    """A new deployment's first burst: statistics taken while no run existed at all."""
    users, tasks, _yesterday, _analyze, today = _SETUP
    yield from _queued(database_url, [users, tasks, "ANALYZE task_runs", today])


Step = Callable[[AsyncConnection], Coroutine[Any, Any, object]]
UNSENT = text("UPDATE task_runs SET published_at = NULL WHERE state = 'queued'")
RUNNING = text("UPDATE task_runs SET state = 'running', worker_id = 'w' WHERE id = ANY(:ids)")


def explained(
    database_url: str, step: Step, table: str = "task_runs", marks: str = ""
) -> list[str]:
    """The indexes each plan of :func:`plans_of` scans, one string per plan."""
    return [" ".join(sorted(_indexes(plan))) for plan in plans_of(database_url, step, table, marks)]


def plans_of(
    database_url: str, step: Step, table: str = "task_runs", marks: str = ""
) -> list[dict[str, Any]]:
    """Run ``step`` in a transaction rolled back, then EXPLAIN each statement it sent that
    reads ``table`` (and contains ``marks``), with its own parameters."""

    async def main() -> list[dict[str, Any]]:
        engine = make_async_engine(database_url)
        sent: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
            wanted = f" {table}" in statement and marks in statement
            if wanted and not statement.startswith("EXPLAIN"):
                sent.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with engine.connect() as conn:
                transaction = await conn.begin()
                await step(conn)
                await transaction.rollback()
                found: list[dict[str, Any]] = []
                for statement, parameters in sent:
                    plan = await conn.exec_driver_sql(
                        "EXPLAIN (FORMAT JSON) " + statement, parameters
                    )
                    found.append(plan.scalar_one()[0]["Plan"])
                await conn.rollback()
                return found
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _indexes(node: dict[str, Any]) -> set[str]:
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", ()):
        found |= _indexes(child)
    return found


def _conditions(node: dict[str, Any]) -> list[str]:
    """Every condition a plan's nodes test, theirs and their children's."""
    found = [node[key] for key in ("Filter", "Index Cond", "Recheck Cond") if key in node]
    for child in node.get("Plans", ()):
        found += _conditions(child)
    return found


def test_a_claim_finds_its_runs_and_their_history_by_key(
    database_url: str, burst: list[int]
) -> None:
    async def claim(conn: AsyncConnection) -> object:
        got = await claims.claim(
            conn, burst[:BATCH], worker_id="w", now=NOW, lease=timedelta(minutes=1)
        )
        assert len(got) == BATCH
        assert all(run.request.previous_results for run in got)  # yesterday's answer
        return got

    plans = explained(database_url, claim)
    # On PostgreSQL the claim, the load of the runs' tasks and their history are one statement
    # (test_round_trips.py): the runs by key, each task's history through the task index,
    # newest first; never through the state index.
    [plan] = plans
    assert "pk_task_runs" in plan and TASK_INDEX in plan, plans
    assert STATE_INDEX not in plan, plans


def test_storing_outcomes_finds_the_runs_by_key(database_url: str, burst: list[int]) -> None:
    async def store(conn: AsyncConnection) -> object:
        got = await claims.claim(
            conn, burst[:BATCH], worker_id="w", now=NOW, lease=timedelta(minutes=1)
        )
        reply = AgentReply(text="ok", model="m")
        outcomes = [Outcome(r.request.run_id, 1, "offline", reply) for r in got]
        return await results.record(
            conn, got, outcomes, now=NOW, policy=RetryPolicy(1.0, 60.0), pause_after=5
        )

    plans = explained(database_url, store)
    assert plans and all(STATE_INDEX not in plan for plan in plans), plans


def test_marking_runs_unsent_finds_them_by_key(database_url: str, burst: list[int]) -> None:
    async def unsent(conn: AsyncConnection) -> object:
        return await dispatch.mark_unsent(conn, burst[:BATCH], now=NOW)

    assert explained(database_url, unsent) == ["pk_task_runs"]


def test_owed_runs_are_locked_by_key(database_url: str, burst: list[int]) -> None:
    """The owed runs are found through the state index (that is its use); once named, they are
    locked by key."""

    async def owed(conn: AsyncConnection) -> object:
        await conn.execute(UNSENT)
        batch = await fair_store.owed_runs(
            conn, now=NOW + timedelta(minutes=2), limits=Limits(cap=5_000), limit=BATCH
        )
        assert len(batch.runs) == BATCH
        return batch

    assert explained(database_url, owed, marks="FOR NO KEY UPDATE") == ["pk_task_runs"]


def test_a_heartbeat_renews_its_runs_by_key(database_url: str, burst: list[int]) -> None:
    def renew(conn: Connection) -> int:
        conn.execute(RUNNING, {"ids": burst})
        return heartbeat.renew(conn, burst[:BATCH], worker_id="w", until=NOW + timedelta(hours=1))

    async def step(conn: AsyncConnection) -> object:
        assert await conn.run_sync(renew) == BATCH
        return None

    [plan] = explained(database_url, step, marks="SKIP LOCKED")
    assert STATE_INDEX not in plan and "pk_task_runs" in plan, plan


def test_a_first_burst_reads_each_message_s_ids_once(
    database_url: str, first_burst: list[int]
) -> None:
    """Statistics taken before any run existed say the table is tiny: PostgreSQL scans it and
    tests every row against the message's ids. The ids came as text cast to ``bigint[]``
    through ``varchar``, an expression PostgreSQL does not fold, so it parsed the 100 ids again
    for every row (``'{...}'::cstring::bigint[]``): 17 ms a statement over 3,000 runs on a
    quiet machine, 50-70 ms in the latency benchmark's first burst. They now come as an untyped
    parameter cast to ``bigint[]``, which the server reads once, as a constant."""

    async def claim_and_store(conn: AsyncConnection) -> object:
        got = await claims.claim(
            conn, first_burst[:BATCH], worker_id="w", now=NOW, lease=timedelta(minutes=1)
        )
        assert len(got) == BATCH
        reply = AgentReply(text="ok", model="m")
        outcomes = [Outcome(r.request.run_id, 1, "offline", reply) for r in got]
        return await results.record(
            conn, got, outcomes, now=NOW, policy=RetryPolicy(1.0, 60.0), pause_after=5
        )

    found = [c for plan in plans_of(database_url, claim_and_store) for c in _conditions(plan)]
    assert any("ANY" in condition for condition in found), found
    assert not any("cstring" in condition for condition in found), found
