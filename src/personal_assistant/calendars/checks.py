"""The checks a feed meets before anything is expanded: what a hostile feed cannot make us do
(pure).

Each check refuses with a :class:`~personal_assistant.errors.ValidationError` naming ``feed``
that says what is wrong in the feed's terms (the event's UID, the property and the value as the
feed wrote it: :mod:`~personal_assistant.calendars.properties`), never a library's words:

* :func:`check_size`: more than :data:`MAX_EVENTS` events or :data:`MAX_LINES` lines, and
  :func:`check_depth`: components nested more than :data:`MAX_DEPTH` deep, refused in the text,
  before the parser reads them (it spends ~25 us of CPU a line: the feed's 5 MB cap alone
  would let a feed cost more than the sandbox's CPU limit, and the refusal would then depend
  on the machine's speed);
* :func:`check_events`: an event the expansion could not read (no start, several starts, a
  start that is not a date, unreadable dates or durations), a rule that cannot be read, repeats
  every second or minute or more than :data:`MAX_PER_DAY` times a day, has an ``INTERVAL``
  below 1 (the expansion would loop forever) or a list of more than :data:`MAX_RULE_VALUES`
  values (``BYSETPOS=1,1,1,...``: the library scans each period once per value);
* :func:`check_cost`: a rule matching no date (the 31st of February: the library walks it to
  the year 9999), and a feed whose rules' walks from their events' starts to the end of the
  window (:mod:`~personal_assistant.calendars.recurrence_cost`, which also counts the walks the
  library makes for an override of a series) come to more than :data:`MAX_EXPANSION_STEPS`.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import icalendar

from personal_assistant.calendars import properties as props
from personal_assistant.calendars import recurrence_cost as cost
from personal_assistant.safe_text import safe_text

__all__ = [
    "MAX_DEPTH",
    "MAX_EVENTS",
    "MAX_EXPANSION_STEPS",
    "MAX_LINES",
    "MAX_PER_DAY",
    "MAX_RULE_VALUES",
    "check_cost",
    "check_depth",
    "check_events",
    "check_size",
]


#: At most this many events (``VEVENT``) in a feed: ten years of a busy calendar, ~2 s of CPU
#: to read on a 2-core machine.
MAX_EVENTS = 10_000
#: At most this many lines in a feed: 10,000 events of 20 lines, ~5 s of CPU to read.
MAX_LINES = 200_000
#: Components nest at most this deep (calendars nest three deep: calendar, event, alarm).
MAX_DEPTH = 10
#: At most this many occurrences a day from an event's rules (an hourly rule has 24).
MAX_PER_DAY = 24
#: A list in a rule holds at most this many values (a year has 366 days).
MAX_RULE_VALUES = 366
#: At most this much walking for a feed's rules (:mod:`.recurrence_cost` units,
#: about a day of a daily rule each: ~3 s of CPU for the whole budget).
MAX_EXPANSION_STEPS = 1_000_000
#: Rule frequencies no calendar uses for events people are reminded of, refused as a whole.
_REFUSED_FREQUENCIES = frozenset({"SECONDLY", "MINUTELY"})
#: Properties an event has at most once, with the words for one and for several of them.
_SINGLE = {
    "UID": ("UID", "UIDs"),
    "DTSTART": ("start (DTSTART)", "starts (DTSTART)"),
    "DTEND": ("end (DTEND)", "ends (DTEND)"),
    "DURATION": ("duration (DURATION)", "durations (DURATION)"),
    "RECURRENCE-ID": ("original start (RECURRENCE-ID)", "original starts (RECURRENCE-ID)"),
}
_DATE_LISTS = {"RDATE": "extra dates (RDATE)", "EXDATE": "excluded dates (EXDATE)"}
_FREQUENCIES = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
_RULE_PARTS = frozenset(
    {"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY",
     "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST", "RSCALE", "SKIP"}
)  # fmt: skip
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_ONE_DAY = timedelta(days=1)
_LAST_MOMENT = datetime(9999, 12, 31)

_NESTING = re.compile(r"^(BEGIN|END)[;:]", re.IGNORECASE | re.MULTILINE)
_EVENT = re.compile(r"^BEGIN:VEVENT\s*$", re.IGNORECASE | re.MULTILINE)
_SHORTER = "not an ordinary calendar (subscribe to a shorter export)"


def check_size(text: str) -> None:
    """Refuse more than :data:`MAX_EVENTS` events or :data:`MAX_LINES` lines, counted in the
    text (a few milliseconds for 5 MB) before the parser spends seconds on them."""
    if text.count("\n") > MAX_LINES:
        raise props.refused(f"has more than {MAX_LINES:,} lines: {_SHORTER}")
    for events, _ in enumerate(_EVENT.finditer(text), start=1):
        if events > MAX_EVENTS:
            raise props.refused(f"has more than {MAX_EVENTS:,} events: {_SHORTER}")


def check_depth(text: str) -> None:
    """Refuse components nested more than :data:`MAX_DEPTH` deep, before the parser spends
    seconds and hundreds of megabytes on them (250,000 levels: 4.5 s, 240 MB)."""
    depth = 0
    for line in _NESTING.finditer(text):
        if line.group(1).upper() == "END":
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > MAX_DEPTH:
            raise props.refused(
                f"nests components (BEGIN:...) more than {MAX_DEPTH} deep: not an ordinary calendar"
            )


def check_events(calendar: icalendar.Calendar) -> None:
    """Refuse, before anything is expanded, the events the expansion could not read or would
    spend unbounded time on; each message names the event and the property."""
    for event in calendar.walk("VEVENT"):
        uid = props.short_uid(props.uid_of(event))
        for name, (_, several) in _SINGLE.items():
            value = event.get(name)
            if isinstance(value, list):
                raise props.refused(
                    f"event {uid!r} has {len(value)} {several} where one is expected"
                )
        if "DTSTART" not in event:
            raise props.refused(f"event {uid!r} has no start (DTSTART)")
        for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
            if name in event and not props.is_moment(props.read(event[name], "dt")):
                raise props.refused(
                    f"event {uid!r}: its {_SINGLE[name][0]} {props.raw(event[name])!r} "
                    "is not a date or a date-time"
                )
        if "DURATION" in event and not isinstance(props.read(event["DURATION"], "dt"), timedelta):
            raise props.refused(
                f"event {uid!r}: its duration (DURATION) {props.raw(event['DURATION'])!r} "
                "is not a duration"
            )
        for name, words in _DATE_LISTS.items():
            for dates in props.as_list(event.get(name)):
                if not _are_moments(dates):
                    raise props.refused(
                        f"event {uid!r}: its {words} {props.raw(dates)!r} "
                        "are not dates or date-times"
                    )
        per_day = 0
        for rule in props.as_list(event.get("RRULE")):
            per_day += _check_rule(uid, rule)
        if per_day > MAX_PER_DAY:
            raise props.refused(
                f"event {uid!r} repeats more than {MAX_PER_DAY} times a day: not supported"
            )


def _check_rule(uid: str, rule: Any) -> int:
    """Refuse a rule that cannot be read or is not supported; its occurrences a day, at most.

    An empty rule (``RRULE:``, as some published holiday feeds have) repeats nothing: the
    library ignores it, and so do the checks."""
    raw = props.raw(rule)
    if not raw:
        return 0
    unreadable = props.refused(f"event {uid!r}: its rule (RRULE) {raw!r} cannot be read")
    if not isinstance(rule, icalendar.vRecur):
        raise unreadable
    frequencies = [str(f).upper() for f in rule.get("FREQ", [])]
    if len(frequencies) != 1 or frequencies[0] not in _FREQUENCIES:
        raise unreadable
    if any(str(part).upper() not in _RULE_PARTS for part in rule):
        raise unreadable
    intervals = rule.get("INTERVAL", [1])
    if len(intervals) != 1 or not isinstance(intervals[0], int):
        raise unreadable
    if intervals[0] < 1:  # 0 never moves on: the expansion would loop forever
        raise props.refused(
            f"event {uid!r}: its rule (RRULE) {raw!r} has an interval (INTERVAL) of "
            f"{intervals[0]}: it must be 1 or more"
        )
    for part in rule:
        listed = rule[part]
        if isinstance(listed, list) and len(listed) > MAX_RULE_VALUES:
            raise props.refused(
                f"event {uid!r}: its rule (RRULE) lists {len(listed):,} values in "
                f"{safe_text(str(part).upper(), props.RAW_MAX)}: "
                f"at most {MAX_RULE_VALUES} are allowed"
            )
    scales = {str(s).upper() for s in rule.get("RSCALE", [])} - {"GREGORIAN"}
    if scales:
        raise props.refused(
            f"event {uid!r}: its rule uses the {', '.join(sorted(scales))} calendar (RSCALE): "
            "only the Gregorian calendar is supported"
        )
    if frequencies[0] in _REFUSED_FREQUENCIES:
        raise props.refused(f"event {uid!r} repeats every second or minute: not supported")

    def values(part: str) -> int:
        return max(len(set(map(str, rule.get(part, [])))), 1)

    hours = 24 if frequencies[0] == "HOURLY" and "BYHOUR" not in rule else values("BYHOUR")
    return hours * values("BYMINUTE") * values("BYSECOND")


def check_cost(calendar: icalendar.Calendar, window_end: datetime) -> None:
    """Refuse, before anything is expanded, a rule that matches no date and a feed whose
    rules would take more than :data:`MAX_EXPANSION_STEPS` to walk (module doc).

    The library walks each series' rules from its start to the end of the window; for an
    override that has rules or dates of its own (``RRULE``, ``RDATE``, ``EXDATE``) it walks the
    series' rules to the override's original start too, and for one that moves this and the
    future instances (``RANGE=THISANDFUTURE``) it walks them as much further as they move.
    ``window_end`` is a naive wall-clock time."""
    cores: dict[str, list[tuple[Any, cost.Rule]]] = {}
    walks: dict[str, list[datetime]] = {}  # where the library walks each series' rules to
    for event in calendar.walk("VEVENT"):
        if "RECURRENCE-ID" not in event:
            rules = [r for r in props.as_list(event.get("RRULE")) if props.raw(r)]
            if rules:
                start = _moment(event, "DTSTART")
                cores.setdefault(props.uid_of(event), []).extend(
                    (r, _cost_rule(r, start)) for r in rules
                )
            continue
        uid = props.uid_of(event)
        ends = walks.setdefault(uid, [])
        original = _moment(event, "RECURRENCE-ID")
        if str(event["RECURRENCE-ID"].params.get("RANGE", "")).upper() == "THISANDFUTURE":
            moved = original - _moment(event, "DTSTART")
            ends.append(window_end + max(moved, timedelta(0)))
        if any(name in event for name in ("RRULE", "RDATE", "EXDATE")):
            ends.append(max(window_end, original + _ONE_DAY))
    searches = cost.Searches()
    total = 0
    for uid, rules in cores.items():
        for end in [window_end, *walks.get(uid, [])]:
            for raw, rule in rules:
                steps = cost.walk_cost(rule, min(end, _LAST_MOMENT), searches)
                if steps is None:
                    raise props.refused(
                        f"event {props.short_uid(uid)!r}: its rule (RRULE) {props.raw(raw)!r} "
                        "matches no date: not supported"
                    )
                total += steps
                if total > MAX_EXPANSION_STEPS:
                    raise props.refused(
                        f"event {props.short_uid(uid)!r}: too many repetitions to compute "
                        f"between its start (DTSTART {rule.start.date().isoformat()}) and the "
                        f"end of the window (more than {MAX_EXPANSION_STEPS:,} steps for the "
                        "feed): not supported"
                    )


def _cost_rule(rule: Any, start: datetime) -> cost.Rule:
    """A rule (checked by :func:`_check_rule`) as :mod:`.recurrence_cost` reads it."""
    until = [props.wall(u) for u in rule.get("UNTIL", []) if isinstance(u, date)]
    return cost.Rule(
        frequency=str(rule["FREQ"][0]).upper(),  # type: ignore[arg-type]  # checked: a known one
        interval=int(rule.get("INTERVAL", [1])[0]),
        start=start,
        until=min(until) if until else None,
        bymonth=_numbers(rule, "BYMONTH"),
        byweekno=_numbers(rule, "BYWEEKNO"),
        byyearday=_numbers(rule, "BYYEARDAY"),
        bymonthday=_numbers(rule, "BYMONTHDAY"),
        byhour=_numbers(rule, "BYHOUR"),
        byweekday=frozenset(_weekday(day) for day in rule.get("BYDAY", [])) - {None},  # type: ignore[arg-type]
        wkst=next((w for w in map(_weekday, rule.get("WKST", [])) if w is not None), 0),
    )


def _numbers(rule: Any, part: str) -> frozenset[int]:
    numbers: set[int] = set()
    for value in rule.get(part, []):
        try:
            numbers.add(int(str(value)))
        except ValueError:  # not a number: the library refuses the rule when it expands it
            continue
    return frozenset(numbers)


def _weekday(value: object) -> int | None:
    """``MO``, ``-1FR``, ``4TH``: the weekday (0 is Monday), without the ordinal."""
    return _WEEKDAYS.get(str(value).strip().upper()[-2:])


def _moment(event: Any, name: str) -> datetime:
    """The event's ``name`` (checked: a date or a date-time) as a naive wall-clock time."""
    value = props.read(event[name], "dt")
    return props.wall(value if isinstance(value, date) else date.min)


def _are_moments(dates: object) -> bool:
    values = props.read(dates, "dts")
    if not isinstance(values, list):
        return False
    for item in values:
        moment = props.read(item, "dt")
        if isinstance(moment, tuple) and moment:  # a PERIOD: (start, end or duration)
            moment = moment[0]
        if not props.is_moment(moment):
            return False
    return bool(values)
