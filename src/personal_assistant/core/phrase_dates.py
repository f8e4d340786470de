"""The dates in what people say (pure): the next 3 March, the next 15th, a month's last day,
and the last day an "until ..." names (``until June``: 31 May; ``until Friday``: Friday)."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, timedelta

__all__ = ["UNTIL_DAY", "month_day_date", "month_last_day", "months_later", "next_date"]

_ONE_DAY = timedelta(days=1)


def next_date(today: date, month: int, day: int) -> date:
    """The next ``month``/``day`` from ``today`` on (29 February: the next leap year)."""
    for year in range(today.year, today.year + 9):
        if day <= calendar.monthrange(year, month)[1] and date(year, month, day) >= today:
            return date(year, month, day)
    return today


def month_day_date(today: date, dom: int) -> date | None:
    year, month = today.year, today.month
    for _ in range(13):
        if dom <= calendar.monthrange(year, month)[1] and date(year, month, dom) >= today:
            return date(year, month, dom)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def months_later(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _until_month(today: date, value: object, doubts: list[str]) -> date:
    """ "until June": the day before June starts."""
    assert isinstance(value, tuple)
    month, year = value
    first = date(int(year), month, 1) if year else next_date(today + _ONE_DAY, month, 1)
    return first - _ONE_DAY


def _until_month_end(today: date, value: object, doubts: list[str]) -> date:
    """ "until the end of June": its last day."""
    assert isinstance(value, tuple)
    month, year = value
    if year:
        return month_last_day(int(year), month)
    last = month_last_day(today.year, month)
    return last if last >= today else month_last_day(today.year + 1, month)


def _until_this_month(today: date, value: object, doubts: list[str]) -> date:
    return month_last_day(today.year, today.month)


def _until_this_week(today: date, value: object, doubts: list[str]) -> date:
    return today + timedelta(days=6 - today.weekday())


def _until_date(today: date, value: object, doubts: list[str]) -> date | None:
    assert isinstance(value, tuple)
    month, dom, year = value
    try:
        return date(int(year), month, dom) if year else next_date(today, month, dom)
    except ValueError:
        doubts.append("the end date does not exist")
        return None


def _until_nth(today: date, value: object, doubts: list[str]) -> date | None:
    assert isinstance(value, int)
    found = month_day_date(today, value)
    if found is None:
        doubts.append("the end day does not exist")
    return found


def _until_weekday(today: date, value: object, doubts: list[str]) -> date:
    assert isinstance(value, int)
    return today + timedelta(days=(value - today.weekday()) % 7)


def _until_days(today: date, value: object, doubts: list[str]) -> date:
    assert isinstance(value, int)
    return today + timedelta(days=value)


#: The last day of an "until ..." by what it names; anything else names a time of day.
UNTIL_DAY: dict[str, Callable[[date, object, list[str]], date | None]] = {
    "month": _until_month,
    "month_end": _until_month_end,
    "this_month": _until_this_month,
    "this_week": _until_this_week,
    "date": _until_date,
    "nth": _until_nth,
    "weekday": _until_weekday,
    "days": _until_days,
}
