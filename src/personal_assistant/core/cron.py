"""Cron expressions: the one place that knows the cron library (cronsim).

A 5-field expression (with ``L``, ``#``, ranges and steps) is matched against naive wall-clock
times; the schedule maths turn those into instants. Debian cron (cron(8), NOTES) splits jobs
in two: a *wildcard* job, whose minute or hour field begins with ``*``, follows elapsed time
across DST changes; any other is a *fixed-time* job, which follows the DST policy of
:func:`~personal_assistant.core.wallclock.resolve_local`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache

from cronsim import CronSim, CronSimError

from personal_assistant.errors import ScheduleError

__all__ = ["check_cron", "cron_is_wildcard", "cron_matches"]

_CRON_PROBE = datetime(2000, 1, 1)


def cron_matches(expression: str, after: datetime) -> Iterator[datetime]:
    """Naive wall-clock times matching ``expression``, in order, strictly after naive ``after``.

    Raises ValueError for a bad expression; the iterator ends when there is no match for 50
    years.
    """
    try:
        return CronSim(expression, after)
    except CronSimError as exc:
        raise ValueError(str(exc)) from exc


def cron_is_wildcard(expression: str) -> bool:
    """Debian cron's "wildcard" job: its minute or hour field begins with ``*``.

    Such a job follows elapsed time across DST changes; any other is a "fixed-time" job
    (cron(8), NOTES; cronsim draws the same line).
    """
    minute, hour = expression.split()[:2]
    return minute.startswith("*") or hour.startswith("*")


@lru_cache(maxsize=4096)
def check_cron(expression: str) -> None:
    """Raise ScheduleError unless ``expression`` parses and has a firing (cached when valid)."""
    if len(expression.split()) != 5:
        raise ScheduleError(
            "must have 5 fields: minute hour day-of-month month day-of-week",
            field="schedule.expression",
        )
    try:
        first = next(cron_matches(expression, _CRON_PROBE), None)
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression: {exc}", field="schedule.expression") from exc
    if first is None:
        raise ScheduleError("never fires", field="schedule.expression")
