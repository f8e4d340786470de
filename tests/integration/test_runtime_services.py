"""A worker's services are built once, however many Celery threads ask for them at once.

``Runtime.services()`` used to check ``self._services is None`` without a lock: the 16 threads
of a worker starting together each built an engine, an agent and a processor of their own, 16
times the in-flight cap of ``MAX_IN_FLIGHT`` and 16 pools of idle connections.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from personal_assistant.config import Settings
from personal_assistant.workers.runtime import Runtime, Services, pool_limits
from support.stack import settings_for

pytestmark = pytest.mark.integration

THREADS = 16


class CountingRuntime(Runtime):
    """The real build, counted, and slow enough that every thread arrives while it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.builds = 0

    async def _build(self, settings: Settings) -> Services:
        self.builds += 1
        await asyncio.sleep(0.2)
        return await super()._build(settings)


def test_threads_starting_together_share_one_build(database_url: str, tmp_path: Path) -> None:
    settings = settings_for({"DATABASE_URL": database_url, "PA_HOME": str(tmp_path)})
    runtime = CountingRuntime()
    start = threading.Barrier(THREADS)
    got: list[Services] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            start.wait(timeout=30)
            got.append(runtime.services(settings))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert len(got) == THREADS
        assert runtime.builds == 1
        assert len({id(services) for services in got}) == 1
        assert runtime.services(settings) is got[0]
        pool = got[0].engine.pool
        assert (pool.size(), pool._max_overflow) == pool_limits(settings)  # type: ignore[attr-defined]  # QueuePool
    finally:
        for services in {id(s): s for s in got}.values():
            runtime.run(services.engine.dispose())
        _close(runtime)


def _close(runtime: Runtime) -> None:
    """Stop the runtime's loop thread and close its loop (an unclosed loop warns)."""
    loop = runtime.run(_running_loop())
    runtime.loop.stop()
    deadline = time.monotonic() + 30
    while loop.is_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.close()


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


@pytest.mark.parametrize(
    ("env", "limits"),
    [
        # 16 threads and the heartbeat; every thread in a scheduler burst of three claimers
        ({}, (17, 32)),
        ({"WORKER_CONCURRENCY": "4"}, (5, 8)),
        ({"WORKER_POOL": "prefork"}, (2, 2)),  # a child process runs one task at a time
        ({"WORKER_POOL": "solo"}, (2, 2)),
    ],
)
def test_the_pool_is_sized_from_the_concurrency(
    env: dict[str, str], limits: tuple[int, int], tmp_path: Path
) -> None:
    settings = settings_for({"PA_HOME": str(tmp_path)} | env)
    assert pool_limits(settings) == limits
