"""Work whose size a user controls runs on a loop of its own, never on the runs' loop.

A calendar feed's sync and a data export are as big as their owner makes them. On the loop
that runs every user's runs, the steps of 16 feed syncs took turns with a run's steps, and
another user's run took 0.1-0.25 s instead of 0.03 s (``tests/chaos/test_hostile_feeds.py``).
:attr:`Runtime.bulk` is a second loop with an engine of its own; the ``sync_tasks`` and
``file_tasks`` tasks run there.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from personal_assistant.calendars import sync as calendar_sync
from personal_assistant.exports import store as exports
from personal_assistant.workers import runtime as runtime_module
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.runtime import Runtime
from personal_assistant.workers.tasks import file_tasks, sync_tasks
from support.stack import settings_for


@pytest.fixture
def runtime(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> Iterator[Runtime]:
    """A runtime of the test's own, used by the tasks, with settings on the test's database."""
    settings = settings_for({"DATABASE_URL": database_url, "EXPORT_DIR": str(tmp_path)})
    monkeypatch.setattr(app, "_pa_settings", settings)
    fresh = Runtime()
    for module in (sync_tasks, file_tasks, runtime_module):
        monkeypatch.setattr(module, "runtime", fresh)
    yield fresh
    fresh.run(fresh.services(settings).engine.dispose())
    fresh.run_bulk(fresh.bulk_engine(settings).dispose())
    fresh.loop.stop()
    fresh.bulk.stop()


def test_the_runs_loop_answers_while_bulk_work_holds_its_own(runtime: Runtime) -> None:
    release = threading.Event()

    async def hog() -> None:
        release.wait(30)  # blocks the bulk loop, as a long step of a feed's sync would

    bulk = threading.Thread(target=runtime.run_bulk, args=(hog(),))
    bulk.start()
    try:
        assert runtime.run(asyncio.sleep(0, result="answered"), timeout=10) == "answered"
    finally:
        release.set()
        bulk.join(30)


def test_a_feed_sync_and_an_export_run_on_the_bulk_loop(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    loops: list[str] = []

    async def sync_feed(engine: Any, feed_id: int, now: Any, **_: Any) -> SimpleNamespace:
        assert engine is runtime.bulk_engine(app.pa_settings)
        loops.append(threading.current_thread().name)
        return SimpleNamespace(as_dict=lambda: {"feed_id": feed_id})

    async def export_user(engine: Any, user_id: int, *_: Any, **__: Any) -> SimpleNamespace:
        assert engine is runtime.bulk_engine(app.pa_settings)
        loops.append(threading.current_thread().name)
        return SimpleNamespace(path=Path("x.json"), tasks=0, runs=0, notifications=0)

    monkeypatch.setattr(calendar_sync, "sync_feed", sync_feed)
    monkeypatch.setattr(exports, "export_user", export_user)
    assert sync_tasks.sync_calendar.run(7) == {"feed_id": 7}
    assert file_tasks.export_user_data.run(3)["user_id"] == 3
    assert loops == ["pa-bulk", "pa-bulk"]
