"""What expanding a recurrence rule costs, estimated before anything is expanded.

The expansion library (dateutil's ``rrule``, under recurring-ical-events) walks a rule one
period at a time (an hour, a day, a week, a month or a year, ``INTERVAL`` of them) from the
event's start, tests each day of the period against the rule's day filters (``BYMONTH``,
``BYWEEKNO``, ``BYYEARDAY``, ``BYMONTHDAY``, ``BYDAY``), and stops at the first date past the
end of the window. Two things make that walk long:

* **a start long before the window**: an hourly rule from the year 1 is 17.7 million periods
  to walk before the first one that counts (a worker wedged for minutes);
* **a rule that matches no date** (the 31st of February): no date ever passes the end of the
  window, and the walk goes on to the year 9999, 3 to 5 s for a daily rule. Its ``UNTIL`` does
  not stop it: the library looks at ``UNTIL`` only when a date matches.

:func:`walk_cost` estimates the walk, in :data:`WEIGHTS` units (about one period of a daily
rule, ~3 µs here): the periods from the start to the end of the window, and, for a rule with
day filters, on to the first day they match after it. That day is found with the rule's
*yearly twin*: the same day filters, walked a year at a time (one step sees a whole year). The
Gregorian calendar repeats every 400 years (146,097 days, exactly 20,871 weeks), so filters
that match no day in 400 years match none ever; the twin never walks more than 800 years.

The twin reads the filters as the library does (a rule without day filters takes its day from
the start: RFC 5545, 3.3.10), but it is wider than the rule: it ignores ``BYSETPOS``, the
ordinal of ``BYDAY=2MO`` and most of what ``INTERVAL`` skips (it does know that every seventh
day is the same weekday, and which months a monthly interval reaches). A rule it lets through
can still match nothing: such a walk is bounded by the sandbox that runs the expansion
(:mod:`personal_assistant.calendars.sandbox`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from dateutil import rrule as du  # type: ignore[import-untyped]  # no type hints shipped

__all__ = ["GREGORIAN_CYCLE_YEARS", "WEIGHTS", "Frequency", "Rule", "Searches", "walk_cost"]

Frequency = Literal["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]

#: What one period of the walk costs, relative to a day of a daily rule (measured: an hour
#: 2.2 µs, a day 2.7, a week 4, a month 6, a year 23).
WEIGHTS: dict[Frequency, int] = {"HOURLY": 1, "DAILY": 1, "WEEKLY": 2, "MONTHLY": 2, "YEARLY": 8}
#: The Gregorian calendar's weekdays and leap years repeat with this period.
GREGORIAN_CYCLE_YEARS = 400
_LAST_YEAR = 9999  # where the library's walk ends, whatever the rule
_LAST_CYCLE = datetime(_LAST_YEAR - GREGORIAN_CYCLE_YEARS + 1, 1, 1)
_LAST_DAY = date(_LAST_YEAR, 12, 31)


@dataclass(frozen=True)
class Rule:
    """A rule as far as its cost goes; times are naive wall-clock times (a date: midnight).

    ``byweekday`` holds weekdays (0 is Monday) without their ordinals; ``wkst`` likewise.
    """

    frequency: Frequency
    interval: int
    start: datetime
    until: datetime | None = None
    bymonth: frozenset[int] = frozenset()
    byweekno: frozenset[int] = frozenset()
    byyearday: frozenset[int] = frozenset()
    bymonthday: frozenset[int] = frozenset()
    byweekday: frozenset[int] = frozenset()
    byhour: frozenset[int] = frozenset()
    wkst: int = 0

    @property
    def has_day_filters(self) -> bool:
        return bool(
            self.bymonth or self.byweekno or self.byyearday or self.bymonthday or self.byweekday
        )


@dataclass(frozen=True)
class _Twin:
    """The day filters of a rule's yearly twin (hashable: a cache key)."""

    bymonth: tuple[int, ...]
    byweekno: tuple[int, ...]
    byyearday: tuple[int, ...]
    bymonthday: tuple[int, ...]
    byweekday: tuple[int, ...]
    wkst: int


@dataclass
class Searches:
    """The twins' answers across the rules of a feed (many rules share their filters): the
    first day each matches in the last 400-year cycle, and where a walk past a day stops."""

    first: dict[_Twin, date | None] = field(default_factory=dict)
    stops: dict[tuple[_Twin, date], tuple[date | None, int]] = field(default_factory=dict)


def walk_cost(rule: Rule, window_end: datetime, searches: Searches) -> int | None:
    """The cost of the walk to the end of the window (module doc); None if the rule matches
    no date. Pass the same ``searches`` for the rules of one feed."""
    end = window_end if rule.until is None else min(rule.until, window_end)
    end = max(end, rule.start)
    searched = 0
    if rule.has_day_filters:
        twin = _twin(rule)
        if twin is None:
            return None
        key = (twin, end.date())
        if key not in searches.stops:
            searches.stops[key] = _walk_end(twin, end.date(), searches)
        stop, searched = searches.stops[key]
        if stop is None:
            return None
        end = max(end, datetime.combine(stop, time()))
    return _periods(rule, end) * WEIGHTS[rule.frequency] + searched * WEIGHTS["YEARLY"]


def _periods(rule: Rule, end: datetime) -> int:
    """The periods of the rule from its start to ``end`` (0 if it starts after)."""
    start = rule.start
    if rule.frequency == "HOURLY" and rule.byhour:  # the library jumps to the next hour listed
        count = (end.date() - start.date()).days * len(rule.byhour)
        return max(count, 0) + 1
    if rule.frequency == "HOURLY":
        count = int((end - start).total_seconds() // 3600)
    elif rule.frequency == "DAILY":
        count = (end.date() - start.date()).days
    elif rule.frequency == "WEEKLY":
        count = (end.date() - start.date()).days // 7
    elif rule.frequency == "MONTHLY":
        count = (end.year - start.year) * 12 + end.month - start.month
    else:
        count = end.year - start.year
    return max(count, 0) // rule.interval + 1


def _twin(rule: Rule) -> _Twin | None:
    """The yearly twin's filters; None if what the interval reaches leaves no day at all."""
    bymonth, bymonthday, byweekday = _rule_days(rule)
    if rule.frequency == "DAILY" and rule.interval % 7 == 0:  # always the start's weekday
        byweekday = (byweekday or {rule.start.weekday()}) & {rule.start.weekday()}
        if not byweekday:
            return None
    if rule.frequency == "MONTHLY" and rule.interval > 1:  # the months the interval reaches
        first = rule.start.month - 1
        reached = {(first + k * rule.interval) % 12 + 1 for k in range(12)}
        bymonth = (bymonth or reached) & reached
        if not bymonth:
            return None
    if not (rule.byweekno or rule.byyearday or bymonthday or byweekday):
        bymonthday = set(range(1, 32))  # the twin is yearly: no default day of its own
    return _Twin(
        tuple(sorted(bymonth)),
        tuple(sorted(rule.byweekno)),
        tuple(sorted(rule.byyearday)),
        tuple(sorted(bymonthday)),
        tuple(sorted(byweekday)),
        rule.wkst,
    )


def _rule_days(rule: Rule) -> tuple[set[int], set[int], set[int]]:
    """The rule's months, days of the month and weekdays; a rule without day filters takes
    its day from its start (RFC 5545, 3.3.10)."""
    bymonth, bymonthday, byweekday = set(rule.bymonth), set(rule.bymonthday), set(rule.byweekday)
    if rule.byweekno or rule.byyearday or bymonthday or byweekday:
        return bymonth, bymonthday, byweekday
    if rule.frequency == "YEARLY":
        return bymonth or {rule.start.month}, {rule.start.day}, byweekday
    if rule.frequency == "MONTHLY":
        return bymonth, {rule.start.day}, byweekday
    if rule.frequency == "WEEKLY":
        return bymonth, bymonthday, {rule.start.weekday()}
    return bymonth, bymonthday, byweekday


def _walk_end(twin: _Twin, after: date, searches: Searches) -> tuple[date | None, int]:
    """Where the walk past ``after`` stops: the first day after it that the twin matches, or
    the library's last day; None if the twin matches no day at all. And the years the twin
    walked to find out."""
    if twin not in searches.first:  # at most 400 years: any day they match is in there
        searches.first[twin] = _first(twin, _LAST_CYCLE)
    first = searches.first[twin]
    if first is None:
        return None, GREGORIAN_CYCLE_YEARS
    walked = first.year - _LAST_CYCLE.year + 1
    if after >= _LAST_DAY:
        return _LAST_DAY, walked
    found = _first(twin, datetime.combine(after + timedelta(days=1), time()))
    stop = _LAST_DAY if found is None else found
    return stop, walked + stop.year - after.year + 1


def _first(twin: _Twin, start: datetime) -> date | None:
    """The first day from ``start`` the twin matches, before the library's last year."""
    rule = du.rrule(
        du.YEARLY,
        dtstart=start,
        bymonth=twin.bymonth or None,
        byweekno=twin.byweekno or None,
        byyearday=twin.byyearday or None,
        bymonthday=twin.bymonthday or None,
        byweekday=twin.byweekday or None,
        wkst=twin.wkst,
        byhour=0,
        byminute=0,
        bysecond=0,
        count=1,
    )
    for moment in rule:
        return date(moment.year, moment.month, moment.day)
    return None
