"""``DatabaseScheduler``: celery beat, with the AI task scheduler inside its tick.

``celery -A personal_assistant.workers.celery_app beat`` uses it (``beat_scheduler``). Each
tick runs beat's own entries (the reaper) and one step of
:class:`~personal_assistant.runs.scheduler.TaskScheduler`, then sleeps
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
from personal_assistant.health.heartbeat import announce, depart
from personal_assistant.runs.scheduler import TaskScheduler
from personal_assistant.workers import metrics as worker_metrics
from personal_assistant.workers.celery_app import PersonalAssistantCelery
from personal_assistant.workers.presence import scheduler_presence
from personal_assistant.workers.routing import queue_for
from personal_assistant.workers.runtime import runtime, worker_id
from personal_assistant.workers.task_names import TaskName

log = logging.getLogger(__name__)


def beat_entries(settings: Settings) -> dict[str, dict[str, Any]]:
    """Beat's own entries: name -> task and period, each sent to its routed queue."""
    every = {
        "reap-expired-runs": (
            TaskName.REAP_EXPIRED_RUNS,
            timedelta(seconds=settings.reaper_interval_seconds),
        ),
        "purge-old-runs": (TaskName.PURGE_OLD_RUNS, timedelta(hours=1)),
        "cleanup-exports": (TaskName.CLEANUP_EXPORTS, timedelta(hours=1)),
        "sync-calendars": (TaskName.SYNC_CALENDARS, timedelta(minutes=1)),
        "send-daily-digests": (TaskName.SEND_DAILY_DIGESTS, timedelta(minutes=1)),
    }
    if settings.alert_interval_seconds > 0:
        every["evaluate-alerts"] = (
            TaskName.EVALUATE_ALERTS,
            timedelta(seconds=settings.alert_interval_seconds),
        )
    return {
        name: {"task": task, "schedule": period, "options": {"queue": queue_for(task)}}
        for name, (task, period) in every.items()
    }


class DatabaseScheduler(Scheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._failures = 0
        self._retry_at = 0.0  # monotonic time before which the AI step is not retried
        self._ai: TaskScheduler | None = None
        self._announce_at: float | None = None  # monotonic time of the next presence beat
        super().__init__(*args, **kwargs)

    @property
    def settings(self) -> Settings:
        return cast(PersonalAssistantCelery, self.app).pa_settings

    def setup_schedule(self) -> None:
        worker_metrics.serve(self.settings, multiprocess=False)  # METRICS_PORT set: /metrics
        entries: dict[str, Any] = dict(beat_entries(self.settings))
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
                self._ai = runtime.scheduler(self.app, settings)
            ai_delay = runtime.run(self._ai.tick(runtime.now(settings)))
            self._announce(settings)
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

    def _announce(self, settings: Settings) -> None:
        """Beat the scheduler's row every ``HEARTBEAT_INTERVAL``, from the tick itself: a fresh
        row says that the scheduler ticks, not only that its process lives."""
        if self._announce_at is not None and time.monotonic() < self._announce_at:
            return
        engine = runtime.services(settings).engine
        now = runtime.now(settings)
        runtime.run(announce(engine, worker_id(), now=now, presence=scheduler_presence()))
        self._announce_at = time.monotonic() + settings.heartbeat_interval_seconds

    def close(self) -> None:
        """On a clean stop, delete the scheduler's row: a silent one means it died."""
        if self._announce_at is not None:
            try:
                engine = runtime.services(self.settings).engine
                runtime.run(depart(engine, worker_id()), timeout=10)
            except Exception:
                log.warning("event=presence_not_left", exc_info=True)
        worker_metrics.stop()
        super().close()

    @property
    def info(self) -> str:
        return "    . db -> AI tasks claimed from the database each tick"


__all__ = ["DatabaseScheduler", "ScheduleEntry"]
