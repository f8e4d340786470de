"""What the schedule words of a request say (pure): the :class:`When` record, and the notes
the rules of :mod:`~personal_assistant.core.phrase_when` take on it, one function per kind of
match (``note_times`` for "at 9 and 5", ``note_until`` for "until June"...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from personal_assistant.core import phrase_words as w

__all__ = ["RawTime", "When", "parse_time"]

RawTime = tuple[int, int, str]
"""(hour, minute, marker): marker "am", "pm", "24" (settled), "mid" (the word midnight) or
"" (a bare hour)."""

_UNITS = {
    "minute": 60, "min": 60, "m": 60, "hour": 3600, "hr": 3600, "h": 3600,
    "day": 86400, "d": 86400, "week": 604800, "wk": 604800, "w": 604800,
}  # fmt: skip
UNIT_RE = r"(?:minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|years?|h|m|d|w)"
_WEEKDAYS = (0, 1, 2, 3, 4)
_WEEKEND = (5, 6)
ANY_TIME = r"(?:" + w.WORD_TIME_RE + "|" + w.TIME_RE + ")"
ORD_RE = r"(?:first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last)"
ORD_DAY_RE = r"(?:\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth)"
PART_RE = r"(?:morning|afternoon|evening|night)"
_DAY_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_NOT_PLACES = frozenset(
    (
        "any",
        "every",
        "some",
        "the",
        "same",
        "this",
        "that",
        "next",
        "last",
        "first",
        "on",
        "in",
        "of",
        "free",
        "spare",
        "full",
        "part",
        "real",
        "local",
        "my",
        "your",
        "our",
        "his",
        "her",
        "their",
        "what",
        "lunch",
        "dinner",
        "bed",
        "tea",
        "play",
        "screen",
    )
)


@dataclass
class When:
    """What the schedule words of a request say; :mod:`phrase_build` turns it into a schedule."""

    times: list[RawTime] = field(default_factory=list)
    times_count: int | None = None  # "twice a day": how many times the text says
    repeat: str | None = None  # daily, weekly, monthly, interval, interval_days/weeks, ordinal
    weekdays: set[int] = field(default_factory=set)
    excluded: set[int] = field(default_factory=set)
    every: timedelta | None = None
    month_days: list[int] = field(default_factory=list)
    ordinals: list[tuple[int, int]] = field(default_factory=list)  # (1..5 or -1, weekday)
    last_workday: bool = False
    hour_range: tuple[RawTime, RawTime] | None = None
    on_date: tuple[int, int, int | None] | None = None  # month, day, year (None: not given)
    on_weekday: tuple[int, str] | None = None  # (weekday, "next"/"this"/"on"/"")
    relative_days: int | None = None  # tomorrow = 1, today = 0
    delta: timedelta | None = None  # "in 2 hours": elapsed time
    delta_days: int | None = None  # "in 2 days": calendar days
    parts: list[str] = field(default_factory=list)  # parts of the day named
    this_part: bool = False  # "this morning", "tonight": today's
    zone: str | None = None
    until: tuple[str, object] | None = None
    lasting: tuple[float, str] | None = None  # (3, "week")
    starting: bool = False
    on_the_hour: bool = False
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    doubts: list[str] = field(default_factory=list)


def _ordinal_day(text: str) -> int:
    return _DAY_WORDS.get(text) or int(re.sub(r"\D", "", text))


def _marker(suffix: str) -> str:
    return "am" if suffix.startswith("a") else "pm" if suffix.startswith("p") else ""


def parse_time(text: str) -> RawTime:
    """(hour, minute, marker) of a time of day in figures or words; the hour may be invalid."""
    text = " ".join(text.strip().split())
    if text in ("noon", "midday", "12 noon"):
        return (12, 0, "24")
    if text == "midnight":
        return (0, 0, "mid")
    suffix = re.search(r"\s?(am|pm|a\.m\.?|p\.m\.?)$", text)
    marker = _marker(suffix[1]) if suffix else ""
    body = text[: suffix.start()] if suffix else text
    words = re.fullmatch(
        r"(?:a\s+)?(quarter|half|twenty-five|twenty|ten|five)\s+(past|to)\s+(\S+)", body
    )
    if words is not None:
        hour = _hour_value(words[3])
        minutes = w.MINUTE_WORDS[words[1]]
        if words[2] == "to":
            hour, minutes = (hour - 1) % 12 or 12, 60 - minutes
        return (hour, minutes, marker)
    spoken = re.fullmatch(r"([a-z]+)(?:\s+(thirty|fifteen|forty-five|o'clock))?", body)
    if spoken is not None:
        minute = {"thirty": 30, "fifteen": 15, "forty-five": 45}.get(spoken[2] or "", 0)
        return (w.HOUR_WORDS[spoken[1]], minute, marker)
    figures = re.fullmatch(r"(\d{1,2})(?:[:.h](\d{2}))?(h)?(?:\s?o'clock)?", body)
    assert figures is not None
    hour, minute = int(figures[1]), int(figures[2] or 0)
    french = "h" in body
    if not marker and (hour == 0 or hour >= 13 or figures[1].startswith("0") or french):
        marker = "24"
    return (hour, minute, marker)


def _hour_value(word: str) -> int:
    return int(word) if word.isdigit() else w.HOUR_WORDS[word]


def note_times(when: When, m: re.Match[str]) -> None:
    for piece in re.findall(ANY_TIME, m["list"]):
        when.times.append(parse_time(piece))


def note_times_count(when: When, m: re.Match[str]) -> None:
    word = m["n"]
    count = {"once": 1, "twice": 2}.get(word) or w.number(word)
    if m["unit"] == "week":
        if count != 1:
            when.doubts.append(f"{word} times a week names no days")
        when.repeat = "weekly"
        return
    when.times_count = count
    when.repeat = when.repeat or "daily"


def note_hour_range(when: When, m: re.Match[str]) -> None:
    when.hour_range = (parse_time(m["a"]), parse_time(m["b"]))


def note_every_other(when: When, m: re.Match[str]) -> None:
    unit = m["unit"]
    if unit in ("hour", "minute"):
        when.repeat, when.every = "interval", timedelta(seconds=2 * _UNITS[unit])
    elif unit == "day":
        when.repeat, when.every = "interval_days", timedelta(days=2)
    elif unit in ("week", "weekend"):
        when.repeat, when.every = "interval_weeks", timedelta(days=14)
        if unit == "weekend":  # with no day, build_schedule doubts "every other week" itself
            when.doubts.append("'every other weekend': this one or the next?")
            when.weekdays |= {5, 6}
    elif unit in ("month", "year"):
        when.doubts.append(f"'every other {unit}' names no anchor")
        when.repeat = "monthly"
    else:
        when.repeat, when.every = "interval_weeks", timedelta(days=14)
        when.weekdays.add(w.weekday(unit))


def note_every_n(when: When, m: re.Match[str]) -> None:
    count, unit = w.amount(m["n"]), m["unit"].rstrip("s")
    if count <= 0:
        when.doubts.append("an interval of zero or less")
        return
    if unit in ("month", "year"):
        when.doubts.append(f"every {m['n']} {unit}s")
        when.repeat = "monthly"
        return
    seconds = count * _UNITS[unit]
    when.every = timedelta(seconds=round(seconds))
    if seconds != round(seconds):
        when.doubts.append(f"every {m['n']} {unit}s is not a whole number of seconds")
    if unit in ("minute", "min", "m", "hour", "hr", "h"):
        when.repeat = "interval"
    elif count == 1:
        when.repeat = "daily" if unit in ("day", "d") else "weekly"
    else:
        when.repeat = "interval_days" if unit in ("day", "d") else "interval_weeks"
        if count != int(count):
            when.doubts.append(f"every {m['n']} {unit}s")


def note_half_hour(when: When, m: re.Match[str]) -> None:
    when.repeat, when.every = "interval", timedelta(minutes=30)


def note_every_unit(when: When, m: re.Match[str]) -> None:
    unit = m["unit"]
    if unit in ("minute", "hour"):
        when.repeat, when.every = "interval", timedelta(seconds=_UNITS[unit])
    elif unit == "week":
        when.repeat = "weekly"
    elif unit == "month":
        when.repeat = "monthly"
    elif unit == "year":
        when.doubts.append("yearly schedules are not read yet")
        when.repeat = "monthly"
    else:
        when.repeat = when.repeat or "daily"
        when.parts.extend(re.findall(PART_RE, m[0]))


def _adverb(when: When, word: str) -> None:
    if word == "hourly":
        when.repeat, when.every = "interval", timedelta(hours=1)
    elif word == "nightly":
        when.repeat = "daily"
        when.parts.append("night")
    elif word in ("biweekly", "fortnightly", "bimonthly"):
        when.doubts.append(f"'{word}' is ambiguous")
        when.repeat = "weekly"
    else:
        when.repeat = when.repeat or word


def note_week_part(when: When, m: re.Match[str]) -> None:
    when.repeat = when.repeat or "weekly"
    when.weekdays.update(_WEEKEND if m["part"].startswith("weekend") else _WEEKDAYS)


def note_day_range(when: When, m: re.Match[str]) -> None:
    first, last = w.weekday(m["a"]), w.weekday(m["b"])
    days = range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
    when.repeat = when.repeat or "weekly"
    when.weekdays.update(days)


def note_except(when: When, m: re.Match[str]) -> None:
    when.excluded.update(w.weekday(day) for day in re.findall(w.DAY_RE + r"s?\b", m["list"]))


def note_weekday_list(when: When, m: re.Match[str]) -> None:
    days = re.findall(w.DAY_RE + r"s?\b", m["list"])
    plural = any(day.endswith("s") and day[:-1] in w.WEEKDAYS for day in days)
    if m["lead"] in ("every", "each") or plural or len(days) > 1:
        when.repeat = when.repeat or "weekly"
        when.weekdays.update(w.weekday(day) for day in days)
    elif when.on_weekday is not None or when.weekdays:
        when.doubts.append("two different days named")
        when.weekdays.add(w.weekday(days[0]))
    elif when.repeat is not None:
        when.weekdays.add(w.weekday(days[0]))
    else:
        when.on_weekday = (w.weekday(days[0]), m["lead"] or "")


def note_ordinal(when: When, m: re.Match[str]) -> None:
    when.repeat = "ordinal"
    day = w.weekday(m["day"])
    when.ordinals.extend((w.ORDINALS[o], day) for o in re.findall(ORD_RE, m["ords"]))


def note_second_weekday(when: When, m: re.Match[str]) -> None:
    when.doubts.append(f"'{m[0].strip()}' may be the {m['ord']} of the month or every other one")
    when.repeat = "ordinal"
    when.ordinals.append((w.ORDINALS[m["ord"]], w.weekday(m["day"])))


def note_last_workday(when: When, m: re.Match[str]) -> None:
    when.repeat, when.last_workday = "ordinal", True


def note_last_day(when: When, m: re.Match[str]) -> None:
    when.repeat = "monthly"
    when.month_days.append(31)


def note_month_day(when: When, m: re.Match[str]) -> None:
    when.month_days.extend(_ordinal_day(day) for day in re.findall(ORD_DAY_RE, m["list"]))
    if m["every"] or m["lead"] or m["each"] or when.repeat == "monthly":
        when.repeat = "monthly"


def note_date_md(when: When, m: re.Match[str]) -> None:
    note_set_date(when, w.MONTHS[m["month"]], _ordinal_day(m["day"]), m["year"])
    if m.groupdict().get("wd"):
        when.on_weekday = (w.weekday(m["wd"]), "on")


def note_set_date(when: When, month: int, day: int, year: str | None) -> None:
    if when.on_date is not None:
        when.doubts.append("two dates named")
    try:
        date(int(year) if year else 2000, month, day)  # 2000: a leap year
    except ValueError:
        when.doubts.append(f"there is no day {day} in month {month}")
        return
    when.on_date = (month, day, int(year) if year else None)


def note_iso_date(when: When, m: re.Match[str]) -> None:
    note_set_date(when, int(m["mo"]), int(m["d"]), m["y"])


def note_relative_day(when: When, m: re.Match[str]) -> None:
    word = m["word"]
    when.relative_days = 2 if "after" in word else 0 if word in ("today", "tonight") else 1
    if m["part"]:
        when.parts.append(m["part"])
    if word == "tonight":
        when.parts.append("tonight")
        when.this_part = True


def note_past(when: When, m: re.Match[str]) -> None:
    when.doubts.append(f"'{m[0].strip()}' is in the past")


def note_this_part(when: When, m: re.Match[str]) -> None:
    when.relative_days = 0
    when.this_part = True
    when.parts.append(m["part"])


def note_part(when: When, m: re.Match[str]) -> None:
    when.parts.append(m["part"])


def note_in_delta(when: When, m: re.Match[str]) -> None:
    if m["half"]:
        when.delta = timedelta(minutes=30)
        return
    total = 0.0
    for count, unit in ((m["n"], m["unit"]), (m["n2"], m["unit2"])):
        if count is None:
            continue
        unit = unit.rstrip("s")
        if unit in ("month", "year"):
            when.doubts.append(f"'in N {unit}s'")
            return
        total += w.amount(count) * _UNITS[unit]
    if m["andhalf"]:
        total += _UNITS[m["unit"].rstrip("s")] / 2
    if total <= 0:
        when.doubts.append("a delay of zero or less")
        return
    units = {(unit or "").rstrip("s") for unit in (m["unit"], m["unit2"]) if unit}
    if units <= {"day", "d", "week", "wk", "w"} and total % 86400 == 0 and not m["andhalf"]:
        when.delta_days = int(total // 86400)
        return
    when.delta = timedelta(seconds=round(total))


def note_zone(when: When, m: re.Match[str]) -> None:
    when.zone = w.ZONES[m["zone"]]


def note_iana(when: When, m: re.Match[str]) -> None:
    when.zone = "/".join(
        part.capitalize() if part.islower() else part for part in m["name"].split("/")
    )


def note_abbreviation(when: When, m: re.Match[str]) -> None:
    name = m["abbr"]
    when.doubts.append(f"the zone abbreviation {name.upper()!r} is ambiguous; name a city")
    closest = w.ABBREVIATIONS[name]
    if closest is not None:
        when.zone = closest


def note_place(when: When, m: re.Match[str]) -> None:
    if m["place"] in _NOT_PLACES:
        return
    when.doubts.append(f"no time zone is known for {m['place']!r}")


def note_until(when: When, m: re.Match[str]) -> None:
    target = " ".join(m["target"].split())
    endof = bool(m["endof"])
    found = re.fullmatch(
        r"(?:(?P<m1>"
        + w.MONTH_RE
        + r")\s+(?P<d1>\d{1,2})(?:st|nd|rd|th)?|(?:the\s+)?(?P<d2>\d{1,2})"
        r"(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m2>" + w.MONTH_RE + r"))(?:,?\s+(?P<y>\d{4}))?",
        target,
    )
    month = re.fullmatch(r"(?P<m>" + w.MONTH_RE + r")(?:\s+(?P<y>\d{4}))?", target)
    if found is not None:
        when.until = (
            "date",
            (w.MONTHS[found["m1"] or found["m2"]], int(found["d1"] or found["d2"]), found["y"]),
        )
    elif month is not None:
        number = w.MONTHS[month["m"]]
        when.until = ("month_end" if endof else "month", (number, month["y"]))
    elif target in ("the month", "this month", "the week", "this week"):
        when.until = ("this_" + target.split()[-1], None)
    elif iso := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", target):
        when.until = ("date", (int(iso[2]), int(iso[3]), iso[1]))
    elif nth := re.fullmatch(r"the\s+(\d{1,2})(?:st|nd|rd|th)", target):
        when.until = ("nth", int(nth[1]))
    elif target in ("tomorrow", "today", "tonight"):
        when.until = ("days", 1 if target == "tomorrow" else 0)
    elif target == "yesterday":
        when.doubts.append("an end in the past")
    elif re.fullmatch(w.DAY_RE + "s?", target):
        when.until = ("weekday", w.weekday(target))
    else:
        when.until = ("time", parse_time(target))


def note_starting(when: When, m: re.Match[str]) -> None:
    when.starting = True


def note_lasting(when: When, m: re.Match[str]) -> None:
    count = w.amount(m["n"])
    if count <= 0:
        when.doubts.append("a duration of zero or less")
        return
    when.lasting = (count, m["unit"].rstrip("s"))


def note_on_the_hour(when: When, m: re.Match[str]) -> None:
    when.on_the_hour = True


def note_this_weekend(when: When, m: re.Match[str]) -> None:
    when.doubts.append(f"'{m[0]}' names no day")
    when.on_weekday = (5, "this")


def note_never(when: When, m: re.Match[str]) -> None:
    when.doubts.append(f"'{m[0].strip()}' contradicts the schedule")


def note_times_count_daily(when: When) -> None:
    when.times_count, when.repeat = 2, when.repeat or "daily"


def note_every_unit_daily(when: When) -> None:
    when.repeat = when.repeat or "daily"


def note_after_tomorrow(when: When) -> None:
    when.relative_days = 2


def note_adverb_any(when: When, m: re.Match[str]) -> None:
    _adverb(when, m["word"] or m["w2"] or m["w3"])
