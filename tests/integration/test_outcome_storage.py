"""Outcomes survive a database that fails between the claim and the write.

``tests/chaos/test_postgres_faults.py`` restarts PostgreSQL while workers store results: a
write that failed used to drop the agent's answers, leaving the runs ``running`` until their
lease ended, when the reaper retried them and the agent was called again. The worker now
writes again while the lease lasts (:meth:`RunProcessor._record`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.metrics import instruments
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import RunProcessor
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration


class RestartingDatabase:
    """An engine whose connections (a transaction's, or one statement's) fail ``failures``
    more times, as a restarting server."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.failures = 0

    def _fail(self, statement: str) -> None:
        if self.failures:
            self.failures -= 1
            cause = ConnectionError("server closed the connection unexpectedly")
            raise OperationalError(statement, None, cause)

    def begin(self) -> Any:
        self._fail("BEGIN")
        return self._engine.begin()

    def connect(self) -> Any:
        self._fail("SELECT 1")
        return self._engine.connect()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class AnswerThenRestart:
    """An agent that answers, and meanwhile the database goes away for ``failures`` writes."""

    name = "offline"

    def __init__(self, database: RestartingDatabase, failures: int) -> None:
        self.database = database
        self.failures = failures
        self.calls = 0

    async def complete(self, request: AgentRequest) -> AgentReply:
        self.calls += 1
        self.database.failures = self.failures
        return AgentReply(text=f"answer for run {request.run_id}", model="m")

    async def aclose(self) -> None:
        return None


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


def _settings(database_url: str, tmp_path: Path, **env: str) -> Settings:
    return settings_for(
        {"DATABASE_URL": database_url, "PA_HOME": str(tmp_path), "HEARTBEAT_INTERVAL": "3600"} | env
    )


async def _queued_run(settings: Settings) -> int:
    async with AITaskManager(settings) as manager:
        user = await manager.create_user("Ines")
        at = datetime.now(UTC) + timedelta(days=1)
        task = await manager.create_task(
            user.id, "Digest", schedule={"kind": "once", "at": at.isoformat()}
        )
        return (await manager.run_now(task.id, user.id)).id


async def _process(
    settings: Settings, failures: int, run_id: int, *, beats: bool = True
) -> tuple[Any, int]:
    engine = make_async_engine(settings.database_url)
    database = RestartingDatabase(engine)
    agent = AnswerThenRestart(database, failures)
    processor = RunProcessor(
        database,  # type: ignore[arg-type]  # an AsyncEngine stand-in: begin() fails on demand
        TaskExecutor(agent, timeout=settings.run_timeout_seconds),
        settings,
        worker_id="test:1",
    )
    if not beats:
        processor.heartbeat.ensure_started = lambda: None  # type: ignore[method-assign]  # a worker cut off from the database
    try:
        return await processor.process([run_id]), agent.calls
    finally:
        await processor.heartbeat.stop()
        await engine.dispose()


def test_outcome_is_stored_once_the_database_is_back(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    settings = _settings(database_url, tmp_path)
    run_id = asyncio.run(_queued_run(settings))
    report, calls = asyncio.run(_process(settings, 2, run_id))
    assert (report.claimed, report.succeeded, calls) == (1, 1, 1)
    assert db.rows("SELECT state, attempt, result FROM task_runs WHERE id = :r", r=run_id) == [
        ("succeeded", 1, f"answer for run {run_id}")
    ]
    assert db.scalar("SELECT count(*) FROM notifications WHERE run_id = :r", r=run_id) == 1


def test_writes_are_retried_only_while_the_lease_lasts(
    database_url: str, db: Db, tmp_path: Path
) -> None:
    # A beat every 0.1 s: the lease is 3 x 0.1 + 0.5 s. The database is away for the heartbeat
    # too, so nothing renews the lease.
    settings = _settings(database_url, tmp_path, HEARTBEAT_INTERVAL="0.1", LEASE_MARGIN="0.5")
    run_id = asyncio.run(_queued_run(settings))
    with pytest.raises(OperationalError):
        asyncio.run(_process(settings, 1000, run_id, beats=False))
    # Given up before the lease ends: left to the reaper, as a run whose worker vanished.
    assert db.scalar("SELECT state FROM task_runs WHERE id = :r", r=run_id) == "running"


def test_a_write_given_up_leaves_no_run_counted_in_flight(
    database_url: str, db: Db, tmp_path: Path, metrics_enabled: instruments.Instruments
) -> None:
    """The in-flight gauge used to keep the runs of a group whose write was given up: counted
    out only once written, and no longer among the part's runs still to answer."""
    settings = _settings(database_url, tmp_path, HEARTBEAT_INTERVAL="0.1", LEASE_MARGIN="0.5")
    run_id = asyncio.run(_queued_run(settings))
    with pytest.raises(OperationalError):
        asyncio.run(_process(settings, 1000, run_id, beats=False))
    assert metrics_enabled.registry.get_sample_value("pa_runs_in_flight") == 0
