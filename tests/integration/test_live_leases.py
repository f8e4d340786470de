"""A live worker keeps its runs; a vanished one loses them; "now" is the database's.

The worker's heartbeat renews the leases of the runs it holds from a thread of its own, so a
blocked event loop or an agent slower than the lease costs no run: the reaper, running beside
it, finds nothing to take, and the agent is called once. A worker that stops beating loses its
runs when the lease ends, as before. A process whose host clock is two minutes off takes its
"now" from PostgreSQL and neither reaps live runs nor fires tasks early.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.health import heartbeat
from personal_assistant.runs import claims, results
from personal_assistant.runs.executor import TaskExecutor
from personal_assistant.runs.processor import RunProcessor
from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.workers.runtime import Runtime
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

#: Short timings: a beat every 0.2 s, so a run's lease is 3 x 0.2 + 0.5 = 1.1 s.
TIMINGS = {"HEARTBEAT_INTERVAL": "0.2", "LEASE_MARGIN": "0.5", "RUN_TIMEOUT": "1.5"}
BLOCK_S = 3.0  # 2.7 x the lease, and longer than RUN_TIMEOUT + LEASE_MARGIN (the old lease)


class CountingAgent:
    name = "counting"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[int, int]] = []

    async def complete(self, request: AgentRequest) -> AgentReply:
        self.calls.append((request.run_id, request.attempt))
        await asyncio.sleep(self.delay)
        return AgentReply(text=f"answer for run {request.run_id}", model="m")

    async def aclose(self) -> None:
        return None


def _settings(database_url: str, tmp_path: Path, **env: str) -> Settings:
    return settings_for(
        {"DATABASE_URL": database_url, "PA_HOME": str(tmp_path), "MAX_RETRIES": "0"} | TIMINGS | env
    )


def _queued_run(settings: Settings) -> int:
    async def go() -> int:
        async with AITaskManager(settings) as manager:
            user = await manager.create_user("T", timezone="UTC")
            task = await manager.create_task(
                user.id, "t", schedule={"kind": "daily", "times": ["09:00"]}, max_retries=0
            )
            return (await manager.run_now(task.id, user.id)).id

    return asyncio.run(go())


class Reaper:
    """Another worker's reaper, on its own thread and loop, reaping every 0.1 s."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reaped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._loop()), daemon=True)

    async def _loop(self) -> None:
        engine = make_async_engine(self.settings.database_url)
        processor = RunProcessor(
            engine, TaskExecutor(CountingAgent(), timeout=1), self.settings, worker_id="reaper:1"
        )
        try:
            while not self._stop.is_set():
                reaped, _ = await processor.reap()
                self.reaped += reaped
                await asyncio.sleep(0.1)
        finally:
            await engine.dispose()

    def __enter__(self) -> Reaper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _process(settings: Settings, agent: CountingAgent, run_id: int) -> Any:
    async def go() -> Any:
        engine = make_async_engine(settings.database_url)
        processor = RunProcessor(
            engine,
            TaskExecutor(agent, timeout=settings.run_timeout_seconds),
            settings,
            worker_id="live:1",
        )
        try:
            return await processor.process([run_id])
        finally:
            await processor.heartbeat.stop()
            await engine.dispose()

    return asyncio.run(go())


def test_a_worker_whose_loop_is_blocked_keeps_its_run(
    database_url: str, tmp_path: Path, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(database_url, tmp_path)
    run_id = _queued_run(settings)
    real_record = RunProcessor._record

    async def record_after_a_blocked_loop(self: RunProcessor, *args: Any, **kwargs: Any) -> Any:
        time.sleep(BLOCK_S)  # the agent has answered; the loop is blocked before the write
        return await real_record(self, *args, **kwargs)

    monkeypatch.setattr(RunProcessor, "_record", record_after_a_blocked_loop)
    agent = CountingAgent()
    with Reaper(settings) as reaper:
        report = _process(settings, agent, run_id)
    assert reaper.reaped == 0
    assert agent.calls == [(run_id, 1)]
    assert report.succeeded == 1
    assert db.scalar("SELECT state FROM task_runs WHERE id = :i", i=run_id) == "succeeded"


def test_a_loop_blocked_while_the_claim_commits_keeps_its_run(
    database_url: str, tmp_path: Path, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(database_url, tmp_path)
    run_id = _queued_run(settings)
    real_claim = claims.claim

    async def claim_then_block(*args: Any, **kwargs: Any) -> Any:
        claimed = await real_claim(*args, **kwargs)
        # Something else on the loop blocks it while this claim commits: the process resumes
        # seconds after its runs' leases began.
        asyncio.get_running_loop().call_soon(time.sleep, BLOCK_S)
        return claimed

    monkeypatch.setattr(claims, "claim", claim_then_block)
    agent = CountingAgent()
    with Reaper(settings) as reaper:
        report = _process(settings, agent, run_id)
    assert reaper.reaped == 0
    assert agent.calls == [(run_id, 1)]
    assert report.succeeded == 1


def test_a_loop_blocked_in_the_middle_of_the_write_writes_again(
    database_url: str, tmp_path: Path, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(database_url, tmp_path)
    run_id = _queued_run(settings)
    real_record = results.record
    blocked: list[bool] = []

    async def record_with_a_blocked_loop(*args: Any, **kwargs: Any) -> Any:
        if not blocked:  # with its connection checked out (a transaction, when the write
            # is several statements, which PostgreSQL ends after LEASE_MARGIN idle)
            blocked.append(True)
            time.sleep(BLOCK_S)
        return await real_record(*args, **kwargs)

    monkeypatch.setattr(results, "record", record_with_a_blocked_loop)
    agent = CountingAgent()
    with Reaper(settings) as reaper:
        report = _process(settings, agent, run_id)
    assert reaper.reaped == 0
    assert agent.calls == [(run_id, 1)]
    assert report.succeeded == 1
    assert db.scalar("SELECT state FROM task_runs WHERE id = :i", i=run_id) == "succeeded"


def test_an_agent_slower_than_the_lease_keeps_its_run(
    database_url: str, tmp_path: Path, db: Db
) -> None:
    settings = _settings(database_url, tmp_path, RUN_TIMEOUT="10")
    run_id = _queued_run(settings)
    agent = CountingAgent(delay=BLOCK_S)
    with Reaper(settings) as reaper:
        report = _process(settings, agent, run_id)
    assert reaper.reaped == 0
    assert agent.calls == [(run_id, 1)]
    assert report.succeeded == 1


def test_a_worker_that_stops_beating_loses_its_run_at_the_lease(
    database_url: str, tmp_path: Path, db: Db
) -> None:
    settings = _settings(database_url, tmp_path, RUN_TIMEOUT="10")
    run_id = _queued_run(settings)

    async def claim_then_vanish() -> None:
        engine = make_async_engine(settings.database_url)
        processor = RunProcessor(
            engine, TaskExecutor(CountingAgent(), timeout=10), settings, worker_id="gone:1"
        )
        try:
            async with engine.begin() as conn:
                await claims.claim(
                    conn,
                    [run_id],
                    worker_id="gone:1",
                    now=utcnow(),
                    lease=processor.heartbeat.lease,
                )
        finally:
            await engine.dispose()

    asyncio.run(claim_then_vanish())  # claimed, then nobody beats for it
    deadline = time.monotonic() + 30
    with Reaper(settings) as reaper:
        while reaper.reaped == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert reaper.reaped == 1
    assert db.scalar("SELECT state FROM task_runs WHERE id = :i", i=run_id) == "failed"


SKEW = timedelta(minutes=2)


def test_a_process_whose_clock_is_two_minutes_off_takes_the_database_time(
    database_url: str, tmp_path: Path, db: Db
) -> None:
    settings = _settings(database_url, tmp_path, RUN_TIMEOUT="10")
    ahead = Runtime(host_clock=lambda: datetime.now(UTC) + SKEW)
    behind = Runtime(host_clock=lambda: datetime.now(UTC) - SKEW)
    try:
        db_now = db.scalar("SELECT clock_timestamp()")
        for runtime in (ahead, behind):
            assert abs(runtime.now(settings) - db_now) < timedelta(seconds=5)
            assert abs(runtime.clock.offset) > SKEW - timedelta(seconds=5)

        # A live run of another worker, leased for 30 s of database time: the reaper of the
        # process two minutes ahead leaves it alone.
        run_id = _queued_run(settings)
        db.execute(
            "UPDATE task_runs SET state = 'running', attempt = 1, worker_id = 'w:1', "
            "started_at = clock_timestamp(), "
            "lease_expires_at = clock_timestamp() + interval '30 seconds' WHERE id = :i",
            i=run_id,
        )
        services = ahead.services(settings)
        reaped, _ = ahead.run(services.processor.reap())
        assert reaped == 0
        assert db.scalar("SELECT state FROM task_runs WHERE id = :i", i=run_id) == "running"
    finally:
        for runtime in (ahead, behind):
            if runtime._services is not None:
                runtime.run(runtime._services.engine.dispose())
            runtime.loop.stop()


def test_a_worker_stopped_in_the_middle_of_a_beat_does_not_hold_its_runs(
    database_url: str, tmp_path: Path, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(database_url, tmp_path, RUN_TIMEOUT="10")
    run_id = _queued_run(settings)
    lease = timedelta(seconds=1.1)
    db.execute(
        "UPDATE task_runs SET state = 'running', attempt = 1, worker_id = 'frozen:1', "
        "started_at = :now, lease_expires_at = :end WHERE id = :i",
        now=utcnow(),
        end=utcnow() + lease,
        i=run_id,
    )
    real_renew = heartbeat.renew

    def renew_then_freeze(*args: Any, **kwargs: Any) -> int:
        renewed = real_renew(*args, **kwargs)  # the run's row is locked from here on
        time.sleep(4)  # the process is stopped inside the beat's transaction
        return renewed

    monkeypatch.setattr(heartbeat, "renew", renew_then_freeze)
    held = heartbeat.HeldRuns()
    held.add([run_id])
    beating = heartbeat.Heartbeat(
        database_url,
        "frozen:1",
        interval=0.2,
        lease=lease,
        held=held,
        wedged_after=60,
        stall_limit=0.5,
    )
    frozen = threading.Thread(target=lambda: _ignore_errors(beating.beat_once), daemon=True)
    frozen.start()
    deadline = time.monotonic() + 3.5
    with Reaper(settings) as reaper:
        while reaper.reaped == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    frozen.join(10)
    assert reaper.reaped == 1


def _ignore_errors(call: Any) -> None:
    # Its session was ended while it was stopped: that is the point.
    with contextlib.suppress(Exception):
        call()
