"""``DatabaseScheduler``: celery beat, with the AI task scheduler inside its tick.

``celery -A personal_assistant.workers.celery_app beat`` uses it (``beat_scheduler``). Each
tick runs beat's own entries (the reaper) and one step of
:class:`~personal_assistant.tools.ai_scheduler.task_scheduler.TaskScheduler`, then sleeps
until the next due task, at most ``SCHEDULER_TICK_SECONDS``. Several beats may run at once:
the database, not a lock, prevents duplicate runs.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, cast

from celery.beat import ScheduleEntry, Scheduler

from personal_assistant.config import Settings
from personal_assistant.database.types import utcnow
from personal_assistant.tools.ai_scheduler.task_scheduler import TaskScheduler
from personal_assistant.workers.celery_app import PersonalAssistantCelery
from personal_assistant.workers.dispatch import run_publisher
from personal_assistant.workers.routing import queue_for
from personal_assistant.workers.runtime import runtime

log = logging.getLogger(__name__)

REAPER = "personal_assistant.workers.tasks.maintenance_tasks.reap_expired_runs"
PURGE = "personal_assistant.workers.tasks.maintenance_tasks.purge_old_runs"
CLEANUP_EXPORTS = "personal_assistant.workers.tasks.file_tasks.cleanup_exports"
SYNC_CALENDARS = "personal_assistant.workers.tasks.sync_tasks.sync_calendars"
DIGESTS = "personal_assistant.workers.tasks.email_tasks.send_daily_digests"


class DatabaseScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._failures = 0
        self._retry_at = 0.0  # monotonic time before which the AI step is not retried
        self._ai: TaskScheduler | None = None
        super().__init__(*args, **kwargs)

    @property
    def settings(self) -> Settings:
        return cast(PersonalAssistantCelery, self.app).pa_settings

    def setup_schedule(self) -> None:
        entries: dict[str, Any] = {
            "reap-expired-runs": {
                "task": REAPER,
                "schedule": timedelta(seconds=self.settings.reaper_interval_seconds),
                "options": {"queue": queue_for(REAPER)},
            },
            "purge-old-runs": {
                "task": PURGE,
                "schedule": timedelta(hours=1),
                "options": {"queue": queue_for(PURGE)},
            },
            "cleanup-exports": {
                "task": CLEANUP_EXPORTS,
                "schedule": timedelta(hours=1),
                "options": {"queue": queue_for(CLEANUP_EXPORTS)},
            },
            "sync-calendars": {
                "task": SYNC_CALENDARS,
                "schedule": timedelta(seconds=60),
                "options": {"queue": queue_for(SYNC_CALENDARS)},
            },
            "send-daily-digests": {
                "task": DIGESTS,
                "schedule": timedelta(seconds=60),
                "options": {"queue": queue_for(DIGESTS)},
            },
        }
        self.merge_inplace(entries)
        self.install_default_entries(self.schedule)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        beat_delay = float(super().tick(*args, **kwargs))
        settings = self.settings
        wait = self._retry_at - time.monotonic()
        if wait > 0:  # backing off after failed ticks (database or broker unreachable)
            return min(beat_delay, wait)
        try:
            if self._ai is None:  # kept: it caches parsed schedules between ticks
                publish = run_publisher(self.app, per_message=settings.runs_per_message)
                self._ai = runtime.scheduler(settings, publish)
            ai_delay = runtime.run(self._ai.tick(utcnow()))
        except Exception:
            self._failures += 1
            pause = min(30.0, settings.tick_seconds * 2.0 ** min(self._failures, 6))
            self._retry_at = time.monotonic() + pause
            log.exception(
                "event=scheduler_tick_failed failures=%s retry_in=%.1f", self._failures, pause
            )
            return min(beat_delay, pause)
        if self._failures:
            log.info("event=scheduler_recovered after_failures=%s", self._failures)
        self._failures = 0
        return min(beat_delay, ai_delay)

    @property
    def info(self) -> str:
        return "    . db -> AI tasks claimed from the database each tick"


__all__ = ["DatabaseScheduler", "ScheduleEntry"]
