"""The alert evaluator as the settings configure it: its thresholds, its timing, its window."""

from __future__ import annotations

from datetime import timedelta

from personal_assistant.alerts.evaluate import Timing
from personal_assistant.alerts.rules import Thresholds
from personal_assistant.config import Settings

__all__ = ["thresholds", "timing", "window"]


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        scheduler_silent_s=settings.alert_scheduler_silent_seconds,
        lateness_p99_s=settings.alert_lateness_p99_seconds,
        oldest_queued_s=settings.alert_oldest_queued_seconds,
        queue_backlog_s=settings.alert_queue_backlog_seconds,
        failure_ratio=settings.alert_failure_ratio,
        agent_error_ratio=settings.alert_agent_error_ratio,
    )


def timing(settings: Settings) -> Timing:
    return Timing(
        open_after=timedelta(seconds=settings.alert_open_after_seconds),
        cooldown=timedelta(seconds=settings.alert_cooldown_seconds),
    )


def window(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.alert_window_seconds)
