"""Issue 15: how far dateparser, ctparse and recurrent read the phrases people type.

Each phrase has the first two firings it should give after ``NOW`` (wall clock in Paris; one
firing for a one-off). A library is right on a phrase when its reading gives the same first
firing and, for a recurring phrase, the same second firing too (only recurrent returns a rule;
dateparser and ctparse return one date-time, so they cannot be right on a recurrence). The
table prints correct/total per construction and library, then import and per-call times.

``python -m benchmarks.nl_libraries [tests/unit/nl_cases.yaml]`` also scores the evaluation
set when given: the first firing only, on the entries that expect a schedule.

The libraries are not dependencies of the project (docs/nl-evaluation.md says why):
``pip install dateparser ctparse recurrent`` before running this.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

NOW = datetime(2026, 3, 1, 11, 0)  # 2026-03-01T10:00Z in Europe/Paris, a Sunday

#: (construction, phrase, first firing, second firing or None for a one-off)
PHRASES: list[tuple[str, str, datetime, datetime | None]] = [
    ("absolute", "on March 3rd at 14:30", datetime(2026, 3, 3, 14, 30), None),
    ("absolute", "on 5 April at 9am", datetime(2026, 4, 5, 9, 0), None),
    ("absolute", "March 10 at 8pm", datetime(2026, 3, 10, 20, 0), None),
    ("absolute", "at noon", datetime(2026, 3, 1, 12, 0), None),
    ("absolute", "at midnight", datetime(2026, 3, 2, 0, 0), None),
    ("absolute", "at 17:45", datetime(2026, 3, 1, 17, 45), None),
    ("absolute", "at 9am Paris time", datetime(2026, 3, 2, 9, 0), None),
    ("absolute", "on the 15th at 10am", datetime(2026, 3, 15, 10, 0), None),
    ("relative", "in 2 hours", datetime(2026, 3, 1, 13, 0), None),
    ("relative", "in 20 minutes", datetime(2026, 3, 1, 11, 20), None),
    ("relative", "in three days at 9", datetime(2026, 3, 4, 9, 0), None),
    ("relative", "tomorrow at 9am", datetime(2026, 3, 2, 9, 0), None),
    ("relative", "tomorrow at 6:30 pm", datetime(2026, 3, 2, 18, 30), None),
    ("relative", "next Monday at 10", datetime(2026, 3, 2, 10, 0), None),
    ("relative", "on Friday at 7am", datetime(2026, 3, 6, 7, 0), None),
    ("relative", "tonight at 10", datetime(2026, 3, 1, 22, 0), None),
    ("relative", "this evening at 7", datetime(2026, 3, 1, 19, 0), None),
    ("relative", "in an hour", datetime(2026, 3, 1, 12, 0), None),
    ("recurrence", "every day at 9am", datetime(2026, 3, 2, 9, 0), datetime(2026, 3, 3, 9, 0)),
    ("recurrence", "daily at 18:30", datetime(2026, 3, 1, 18, 30), datetime(2026, 3, 2, 18, 30)),
    (
        "recurrence",
        "every weekday at 8:30",
        datetime(2026, 3, 2, 8, 30),
        datetime(2026, 3, 3, 8, 30),
    ),
    (
        "recurrence",
        "every weekend at 10",
        datetime(2026, 3, 7, 10, 0),
        datetime(2026, 3, 8, 10, 0),
    ),
    (
        "recurrence",
        "every Monday at 9",
        datetime(2026, 3, 2, 9, 0),
        datetime(2026, 3, 9, 9, 0),
    ),
    (
        "recurrence",
        "every Tuesday and Thursday at 7pm",
        datetime(2026, 3, 3, 19, 0),
        datetime(2026, 3, 5, 19, 0),
    ),
    (
        "recurrence",
        "every 15 minutes",
        datetime(2026, 3, 1, 11, 15),
        datetime(2026, 3, 1, 11, 30),
    ),
    ("recurrence", "every 2 hours", datetime(2026, 3, 1, 13, 0), datetime(2026, 3, 1, 15, 0)),
    (
        "recurrence",
        "every 3 days at 8am",
        datetime(2026, 3, 2, 8, 0),
        datetime(2026, 3, 5, 8, 0),
    ),
    (
        "recurrence",
        "every other Tuesday at 7pm",
        datetime(2026, 3, 3, 19, 0),
        datetime(2026, 3, 17, 19, 0),
    ),
    (
        "recurrence",
        "every month on the 15th at 9",
        datetime(2026, 3, 15, 9, 0),
        datetime(2026, 4, 15, 9, 0),
    ),
    (
        "recurrence",
        "the first Monday of the month at 9",
        datetime(2026, 3, 2, 9, 0),
        datetime(2026, 4, 6, 9, 0),
    ),
    (
        "recurrence",
        "the last Friday of the month at 17:00",
        datetime(2026, 3, 27, 17, 0),
        datetime(2026, 4, 24, 17, 0),
    ),
    (
        "recurrence",
        "twice a day at 9 and 5",
        datetime(2026, 3, 1, 17, 0),
        datetime(2026, 3, 2, 9, 0),
    ),
    (
        "recurrence",
        "every hour from 9 to 5 on weekdays",
        datetime(2026, 3, 2, 9, 0),
        datetime(2026, 3, 2, 10, 0),
    ),
    ("recurrence", "every week on Sunday at 20:00", datetime(2026, 3, 1, 20, 0), None),
    (
        "recurrence",
        "every morning at 7",
        datetime(2026, 3, 2, 7, 0),
        datetime(2026, 3, 3, 7, 0),
    ),
    (
        "recurrence",
        "every Friday at noon until June",
        datetime(2026, 3, 6, 12, 0),
        datetime(2026, 3, 13, 12, 0),
    ),
    (
        "recurrence",
        "every day at 9 for 3 weeks",
        datetime(2026, 3, 2, 9, 0),
        datetime(2026, 3, 3, 9, 0),
    ),
    (
        "recurrence",
        "every 30 minutes",
        datetime(2026, 3, 1, 11, 30),
        datetime(2026, 3, 1, 12, 0),
    ),
    (
        "recurrence",
        "each day at midnight",
        datetime(2026, 3, 2, 0, 0),
        datetime(2026, 3, 3, 0, 0),
    ),
]
# "every week on Sunday at 20:00": its second firing is a week later.
PHRASES = [
    (c, p, f, datetime(2026, 3, 8, 20, 0) if p.startswith("every week on Sunday") else s)
    for c, p, f, s in PHRASES
]

Reading = tuple[datetime | None, datetime | None]


def _dateparser() -> Callable[[str, datetime], Reading]:
    dateparser = importlib.import_module("dateparser")
    settings = {"PREFER_DATES_FROM": "future", "RETURN_AS_TIMEZONE_AWARE": False}

    search = importlib.import_module("dateparser.search")

    def read(text: str, now: datetime) -> Reading:
        options = {**settings, "RELATIVE_BASE": now}
        found = dateparser.parse(text, settings=options, languages=["en"])
        if found is None:  # a request holds other words: search the date in it
            hits = search.search_dates(text, settings=options, languages=["en"]) or []
            found = hits[0][1] if hits else None
        return (found, None)

    return read


def _ctparse() -> Callable[[str, datetime], Reading]:
    ctparse = importlib.import_module("ctparse")

    def read(text: str, now: datetime) -> Reading:
        result = ctparse.ctparse(text, ts=now, timeout=1)
        res: Any = result.resolution if result else None
        if res is None or not hasattr(res, "year") or res.year is None:
            return (None, None)
        try:
            return (datetime(res.year, res.month, res.day, res.hour or 0, res.minute or 0), None)
        except (TypeError, ValueError):
            return (None, None)

    return read


def _recurrent() -> Callable[[str, datetime], Reading]:
    event_parser = importlib.import_module("recurrent.event_parser")
    rrule = importlib.import_module("dateutil.rrule")

    def read(text: str, now: datetime) -> Reading:
        event = event_parser.RecurringEvent(now_date=now)
        found = event.parse(text)
        if isinstance(found, datetime):
            return (found, None)
        if not isinstance(found, str) or "RRULE" not in found:
            return (None, None)
        rule = rrule.rrulestr(found, dtstart=now.replace(second=0))
        first = rule.after(now)
        return (first, rule.after(first) if first else None)

    return read


def _ours() -> Callable[[str, datetime], Reading]:
    """personal_assistant.core.phrases, for comparison (a refusal reads as nothing)."""
    from zoneinfo import ZoneInfo

    from personal_assistant.core.next_run import preview
    from personal_assistant.core.phrases import Proposal, parse_request
    from personal_assistant.core.schedule_json import parse_schedule

    paris = ZoneInfo("Europe/Paris")

    def read(text: str, now: datetime) -> Reading:
        aware = now.replace(tzinfo=paris)
        got = parse_request(text, aware, "Europe/Paris")
        if not isinstance(got, Proposal):
            return (None, None)
        fires = [
            f.astimezone(paris).replace(tzinfo=None)
            for f in preview(parse_schedule(got.schedule), aware, 2)
        ]
        return (fires[0] if fires else None, fires[1] if len(fires) > 1 else None)

    return read


LIBRARIES: dict[str, Callable[[], Callable[[str, datetime], Reading]]] = {
    "dateparser": _dateparser,
    "ctparse": _ctparse,
    "recurrent": _recurrent,
    "ours": _ours,
}


def _right(reading: Reading, first: datetime, second: datetime | None) -> bool:
    got_first, got_second = reading
    if got_first is None or got_first.replace(second=0, microsecond=0) != first:
        return False
    if second is None:
        return True
    return got_second is not None and got_second.replace(second=0, microsecond=0) == second


def _safe(read: Callable[[str, datetime], Reading], text: str, now: datetime) -> Reading:
    try:
        return read(text, now)
    except Exception:  # a library raising counts as a wrong reading
        return (None, None)


def _yaml_cases(path: str) -> list[tuple[str, str, datetime, datetime]]:
    """(construction, text, now as naive Paris wall time, expected first firing) of ``path``."""
    from zoneinfo import ZoneInfo

    import yaml

    cases = []
    with open(path, encoding="utf-8") as handle:
        entries = yaml.safe_load(handle)
    for entry in entries:
        expect = entry.get("expect", {})
        if "first" not in expect or "text_repeat" in entry:
            continue
        if entry.get("tz", "Europe/Paris") != "Europe/Paris":
            continue  # every reader here reads in Paris
        zone = ZoneInfo(entry.get("tz", "Europe/Paris"))
        now = datetime.fromisoformat(str(entry.get("now", "2026-03-01T10:00:00+00:00")))
        first = datetime.fromisoformat(str(expect["first"])).astimezone(zone)
        cases.append(
            (
                entry.get("construction", "?"),
                entry["text"],
                now.astimezone(zone).replace(tzinfo=None),
                first.replace(tzinfo=None),
            )
        )
    return cases


def main(argv: list[str]) -> None:
    warnings.simplefilter("ignore")
    logging.getLogger("ctparse").setLevel(logging.CRITICAL)
    readers: dict[str, Callable[[str, datetime], Reading]] = {}
    for name, load in LIBRARIES.items():
        started = time.perf_counter()
        readers[name] = load()
        print(f"{name}: import {1000 * (time.perf_counter() - started):.0f} ms")
    constructions = sorted({c for c, *_ in PHRASES})
    header = f"{'construction':<12}" + "".join(f"{n:>12}" for n in readers)
    print("\nOwn phrases (first firing, and the second for a recurrence)\n" + header)
    costs: dict[str, list[float]] = {name: [] for name in readers}
    for construction in constructions:
        rows = [p for p in PHRASES if p[0] == construction]
        cells = []
        for name, read in readers.items():
            right = 0
            for _, text, first, second in rows:
                started = time.perf_counter()
                reading = _safe(read, text, NOW)
                costs[name].append(time.perf_counter() - started)
                right += _right(reading, first, second)
            cells.append(f"{right}/{len(rows)}")
        print(f"{construction:<12}" + "".join(f"{c:>12}" for c in cells))
    print(
        f"{'ms per call':<12}" + "".join(f"{1000 * sum(v) / len(v):>12.1f}" for v in costs.values())
    )
    print(f"{'max ms':<12}" + "".join(f"{1000 * max(v):>12.1f}" for v in costs.values()))
    if len(argv) > 1:
        cases = _yaml_cases(argv[1])
        print(f"\n{argv[1]}: first firing right, {len(cases)} entries expecting a schedule")
        for name, read in readers.items():
            right = sum(_safe(read, text, now)[0] == first for _, text, now, first in cases)
            print(f"{name:<12}{right}/{len(cases)}")


if __name__ == "__main__":
    main(sys.argv)
