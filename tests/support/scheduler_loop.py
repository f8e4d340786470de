"""A scheduler process for tests: ticks until nothing has been due for ``idle`` seconds."""

from __future__ import annotations

import asyncio
import sys
import time

from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import publish_runs, run_backlog


async def main(idle: float) -> None:
    settings = Settings.from_env()
    app.use_settings(settings)
    engine = make_async_engine(settings.database_url)
    claimed = 0

    def publish(ids: object) -> None:
        nonlocal claimed
        claimed += len(ids)  # type: ignore[arg-type]
        publish_runs(app, ids, per_message=settings.runs_per_message)  # type: ignore[arg-type]

    scheduler = TaskScheduler(engine, settings, publish, backlog=run_backlog(app))
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < idle:
        before = claimed
        await scheduler.tick(utcnow())
        if claimed != before:
            quiet_since = time.monotonic()
    await engine.dispose()
    print(f"claimed={claimed}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.0))
