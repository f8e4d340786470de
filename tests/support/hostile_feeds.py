"""The corpus of hostile calendar feeds: what each one is, and what reading it must answer.

:func:`hostile_feeds` yields ``(name, bytes)`` for

* the files of ``tests/data/hostile_feeds`` (listed in its ``README.md``);
* feeds too large to keep in git, made here: a ``BYSETPOS`` list of 400,000 values, components
  nested 250,000 deep, 30,000 upcoming events, a line of 4.9 MB, 10,000 series of the past,
  5,000 extra dates (``RDATE``) in 17 days;
* icalendar's own fuzz files (``fuzz_testcase_*.ics``), read from the installed package at run
  time, never copied into this repository.

:data:`EXPECTED` says, for the names it knows, how reading the feed must end: ``PARSED``, or
the beginning of the refusal's message (``ValidationError.message``, field ``feed``). A feed
it does not know (icalendar's fuzz files) may end either way, but always as one of the two:
never a crash, a traceback or a hang. The refusals that depend on the limits of the process
that reads the feed are not listed: on a fast machine such a feed is parsed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["CORPUS", "EXPECTED", "PARSED", "hostile_feeds"]

CORPUS = Path(__file__).parents[1] / "data" / "hostile_feeds"
PARSED = "(parsed)"
_CRLF = "\r\n"
_TOO_MANY = "has more than 2000 occurrences"

EXPECTED: dict[str, str] = {
    "interval-zero.ics": "event 'interval-zero': its rule (RRULE) 'FREQ=DAILY;INTERVAL=0' has an "
    "interval (INTERVAL) of 0",
    "interval-negative.ics": "event 'interval-negative': its rule (RRULE) "
    "'FREQ=HOURLY;INTERVAL=-3' has an interval (INTERVAL) of -3",
    "bysecond-bomb.ics": "event 'bysecond-bomb' repeats more than 24 times a day",
    "byminute-bomb.ics": "event 'byminute-bomb' repeats more than 24 times a day",
    "never-matching.ics": "event 'never-matching': its rule (RRULE) "
    "'FREQ=DAILY;BYMONTHDAY=31;BYMONTH=2' matches no date",
    "never-matching-until-far-away.ics": "event 'never-until': its rule (RRULE) "
    "'FREQ=DAILY;UNTIL=99991231T000000Z;BYMONTHDAY=31;BYMONTH=2' matches no date",
    "never-matching-interval.ics": "event 'never-interval': its rule (RRULE) "
    "'FREQ=DAILY;INTERVAL=7;BYDAY=MO' matches no date",
    "never-matching-200-yearly.ics": "event 'never-0': its rule (RRULE) "
    "'FREQ=YEARLY;BYMONTHDAY=31;BYMONTH=2' matches no date",
    "hourly-since-year-1.ics": "event 'since-year-1': too many repetitions to compute between "
    "its start (DTSTART 0001-01-01)",
    "override-in-year-9999.ics": "event 'far-override': too many repetitions to compute between "
    "its start (DTSTART 2026-03-01)",
    "this-and-future-moved-to-9999.ics": "event 'moved': its occurrences cannot be computed",
    "nested-12-deep.ics": "nests components (BEGIN:...) more than 10 deep",
    "invalid-utf8.ics": PARSED,
    "control-characters.ics": PARSED,
    "nul-in-component-name.ics": "is not an iCalendar (ICS) file: no complete VCALENDAR",
    "huge-duration.ics": "event 'duration': its duration (DURATION) 'P999999999999999999W' is "
    "not a duration",
    "vtimezone-every-second.ics": PARSED,
    "year-1-and-year-9999.ics": PARSED,
    "empty.ics": "is empty, not an iCalendar (ICS) file",
    "not-icalendar.ics": "is not an iCalendar (ICS) file",
    "unterminated.ics": "is not an iCalendar (ICS) file: no complete VCALENDAR",
    "two-calendars.ics": "holds several calendars (VCALENDAR) where one is expected",
    "generated/bysetpos-400000.ics": "event 'bysetpos': its rule (RRULE) lists 400,000 values in "
    "BYSETPOS",
    "generated/nested-250000-deep.ics": "nests components (BEGIN:...) more than 10 deep",
    "generated/30000-upcoming-events.ics": "has more than 10,000 events: not an ordinary calendar",
    "generated/3000-upcoming-events.ics": _TOO_MANY,
    "generated/line-of-4.9-MB.ics": PARSED,
    "generated/10000-past-series.ics": "event 'past-",  # "...: too many repetitions to compute"
    "generated/5000-extra-dates.ics": _TOO_MANY,
}


def hostile_feeds(now: datetime | None = None) -> Iterator[tuple[str, bytes]]:
    """Every feed of the corpus (module doc), by name. ``now`` places the generated feeds
    whose events must be upcoming (default: the current time)."""
    for path in sorted(CORPUS.glob("*.ics")):
        yield path.name, path.read_bytes()
    yield from _generated(now or datetime.now(UTC))
    for path in _icalendar_fuzz_files():
        yield f"icalendar/{path.name}", path.read_bytes()


def _generated(now: datetime) -> Iterator[tuple[str, bytes]]:
    soon = (now + timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    positions = ",".join(["1"] * 400_000)
    yield (
        "generated/bysetpos-400000.ics",
        _calendar(_event("bysetpos", f"DTSTART:{soon}", f"RRULE:FREQ=YEARLY;BYSETPOS={positions}")),
    )
    depth = 250_000
    nested = _CRLF.join(["BEGIN:X-A"] * depth + ["END:X-A"] * depth)
    yield "generated/nested-250000-deep.ics", _calendar(nested, _event("n", f"DTSTART:{soon}"))
    upcoming = [
        _event(f"e{i}", f"DTSTART:{(now + timedelta(hours=1 + i % 500)):%Y%m%dT%H%M%SZ}")
        for i in range(30_000)
    ]
    yield "generated/30000-upcoming-events.ics", _calendar(*upcoming)
    yield "generated/3000-upcoming-events.ics", _calendar(*upcoming[:3_000])
    yield (
        "generated/line-of-4.9-MB.ics",
        _calendar(_event("long", f"DTSTART:{soon}", "DESCRIPTION:" + "x" * 4_900_000)),
    )
    past = [
        _event(f"past-{i}", "DTSTART:20100101T090000Z", "RRULE:FREQ=DAILY;COUNT=100")
        for i in range(10_000)
    ]
    yield "generated/10000-past-series.ics", _calendar(*past)
    dates = ",".join(
        f"{now + timedelta(minutes=5 * step):%Y%m%dT%H%M00Z}" for step in range(12, 5012)
    )
    yield (
        "generated/5000-extra-dates.ics",
        _calendar(_event("rdates", f"DTSTART:{soon}", f"RDATE:{dates}")),
    )


def _icalendar_fuzz_files() -> list[Path]:
    """icalendar's fuzz test cases, as installed (its ``tests/calendars`` folder)."""
    spec = importlib.util.find_spec("icalendar")
    if spec is None or spec.origin is None:
        return []
    return sorted((Path(spec.origin).parent / "tests" / "calendars").glob("fuzz_testcase*.ics"))


def _calendar(*parts: str) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hostile corpus//EN", *parts]
    return (_CRLF.join([*lines, "END:VCALENDAR"]) + _CRLF).encode()


def _event(uid: str, *properties: str) -> str:
    return _CRLF.join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", "SUMMARY:Hostile",
         *properties, "END:VEVENT"]
    )  # fmt: skip
