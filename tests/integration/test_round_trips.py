"""What a part of a message costs in round trips to PostgreSQL.

With 2,000 runs in flight in one process, the event loop is busy whenever a wave of answers
comes in (10-45 ms a turn in ``benchmarks/latency_bound.py``, 100 ms in the first wave): each
round trip a run waits for between its answer and its next run's request costs it a turn of
the loop. A part's claim took seven: the pool's ping, ``BEGIN``, ``SET LOCAL``, the claim's
``UPDATE``, the load of its tasks, their recent results, ``COMMIT``; the write of its answers
eight: the ping, ``BEGIN``, ``SET LOCAL``, the ownership check, the runs, their tasks, their
notifications, ``COMMIT``. On PostgreSQL each is now one statement, atomic on its own, sent
outside a transaction: two round trips each, the ping and the statement.

The scheduler's claim of a batch of due tasks likewise: the pool's ping, ``BEGIN``,
``SET LOCAL``, the lock, the runs' insert, the tasks' update and ``COMMIT`` (seven) are now the
ping and one statement (:mod:`~personal_assistant.runs.claim_at_once`).

Round trips are counted on the wire: libpq's trace of each connection the engine opens, one
``ReadyForQuery`` from the server per round trip.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg import pq
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import RunProcessor
from personal_assistant.runs.scheduler import TaskScheduler
from support.factories import queued_runs, user_with_tasks
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

RUNS = 10


class RoundTrips:
    """Counts the round trips of every connection ``engine`` opens from now on."""

    def __init__(self, engine: AsyncEngine, path: Path) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._traced: list[pq.abc.PGconn] = []
        event.listen(engine.sync_engine, "connect", self._trace)

    def _trace(self, dbapi_connection: Any, _record: Any) -> None:
        pgconn = dbapi_connection.driver_connection.pgconn
        pgconn.trace(self._fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self._traced.append(pgconn)

    def count(self) -> int:
        """The round trips so far (libpq buffers its trace: each is flushed, then traced on)."""
        for pgconn in self._traced:
            if pgconn.status == pq.ConnStatus.OK:
                pgconn.untrace()
                pgconn.trace(self._fd)
                pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        return sum(
            line.split("\t")[2:3] == ["ReadyForQuery"]
            for line in self._path.read_text().splitlines()
        )

    def close(self) -> None:
        for pgconn in self._traced:
            if pgconn.status == pq.ConnStatus.OK:
                pgconn.untrace()
        os.close(self._fd)


class NotingAgent:
    """Answers at once; notes the round trips made before its first call (the claim's)."""

    name = "offline"

    def __init__(self, trips: RoundTrips) -> None:
        self.trips = trips
        self.seen_at_first_call: int | None = None

    async def complete(self, request: AgentRequest) -> AgentReply:
        if self.seen_at_first_call is None:
            self.seen_at_first_call = self.trips.count()
        return AgentReply(text=f"answer for run {request.run_id}", model="m")

    async def aclose(self) -> None:
        return None


def _settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(
        {
            "DATABASE_URL": database_url,
            "PA_HOME": str(tmp_path),
            "HEARTBEAT_INTERVAL": "3600",
            "MAX_IN_FLIGHT": str(RUNS),
        }
    )


def test_a_part_is_claimed_and_its_answers_stored_in_one_round_trip_each(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    settings = _settings(database_url, tmp_path)
    runs = asyncio.run(queued_runs(settings, RUNS))

    async def main() -> tuple[int, int, int]:
        engine = make_async_engine(settings.database_url)
        trips = RoundTrips(engine, tmp_path / "libpq.trace")
        agent = NotingAgent(trips)
        processor = RunProcessor(
            engine, TaskExecutor(agent, timeout=60), settings, worker_id="test:1"
        )
        try:
            async with engine.connect() as conn:  # the pool's connection, opened and set up
                await conn.execute(text("SELECT 1"))
            before = trips.count()
            report = await processor.process(runs)
            assert (report.claimed, report.succeeded) == (RUNS, RUNS)
            assert agent.seen_at_first_call is not None
            return before, agent.seen_at_first_call, trips.count()
        finally:
            trips.close()
            await processor.heartbeat.stop()
            await engine.dispose()

    before, at_first_call, after = asyncio.run(main())
    assert at_first_call - before == 2  # the ping, the claim
    assert after - at_first_call == 2  # the ping, the write
    assert db.scalar("SELECT count(*) FROM task_runs WHERE state = 'succeeded'") == RUNS
    assert db.scalar("SELECT count(*) FROM notifications WHERE status = 'delivered'") == RUNS
    assert db.scalar("SELECT count(last_run_at) FROM ai_tasks") == RUNS


def test_a_batch_of_due_tasks_is_claimed_in_one_round_trip(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    # Fair dispatch off: its read of the owners' counts is a read of its own, beside the plan.
    settings = settings_for({"DATABASE_URL": database_url, "USER_DISPATCH_LIMIT": "0"})
    _, task_ids = user_with_tasks(settings, RUNS, created=datetime(2026, 3, 1, 12, tzinfo=UTC))
    due = datetime(2026, 3, 1, 14, 0, 1, tzinfo=UTC)  # the daily 09:00 EST firings

    async def main() -> tuple[int, int, int]:
        engine = make_async_engine(settings.database_url)
        trips = RoundTrips(engine, tmp_path / "libpq.trace")
        at_publish: list[int] = []

        def publish(run_ids: Sequence[int]) -> None:
            assert len(run_ids) == RUNS
            at_publish.append(trips.count())

        try:
            async with engine.connect() as conn:  # the pool's connection, opened and set up
                await conn.execute(text("SELECT 1"))
            before = trips.count()
            report = await TaskScheduler(engine, settings, publish).claim_due(due)
            assert (report.tasks, report.runs) == (RUNS, RUNS)
            return before, at_publish[0], trips.count()
        finally:
            trips.close()
            await engine.dispose()

    before, at_publish, after = asyncio.run(main())
    # The read of the due tasks: the ping, BEGIN, the SELECT, ROLLBACK; the claim: the ping
    # and its statement (seven before: the ping, BEGIN, SET LOCAL, the lock, the insert, the
    # update, COMMIT).
    assert at_publish - before == 4 + 2
    assert after == at_publish
    assert db.scalar("SELECT count(*) FROM task_runs WHERE state = 'queued'") == RUNS
    advanced = db.scalar("SELECT count(*) FROM ai_tasks WHERE next_run_at > :due", due=due)
    assert advanced == len(task_ids)
