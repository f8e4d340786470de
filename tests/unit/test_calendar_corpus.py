"""The test files of icalendar and recurring-ical-events (tests/data/ical_corpus, vendored)
through ``parse_feed`` and ``plan_sync``: nothing crashes, and every refusal is a
ValidationError naming ``feed`` whose message says what is wrong, without Python's or the
libraries' internals and without control characters.

Each file is read at two moments: a fixed ``now`` in 2026, and the day before the file's
first start, so that its events (most are from 1997-2024) are expanded, not only skipped.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personal_assistant.calendars import ics as cal
from personal_assistant.calendars.plan import Stored, plan_sync
from personal_assistant.errors import ValidationError

CORPUS = Path(__file__).parents[1] / "data" / "ical_corpus"
FILES = sorted(CORPUS.rglob("*.ics"))
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PARIS = "Europe/Paris"
INTERNALS = re.compile(
    r"object has no attribute|not supported between|unpack|NoneType|Traceback|"
    r"argument|vDDD|vRecur|vText|vBroken|\bdict\b|tuple|KeyError|IndexError|"
    r"TypeError|AttributeError|ValueError|index out of range|<class|0x[0-9a-f]{6,}",
)
_FIRST_START = re.compile(rb"^DTSTART[^:\r\n]*:(\d{8})", re.MULTILINE)

pytestmark = [
    # Vendor-prefixed TZIDs make icalendar warn that it guessed the zone (and go on).
    pytest.mark.filterwarnings("ignore::icalendar.error.GloballyUniqueTZIDGuessed"),
    pytest.mark.timeout(120),
]


def test_the_corpora_are_there() -> None:
    assert len([f for f in FILES if "icalendar" in f.parts[-3:-1]]) >= 160
    assert len([f for f in FILES if f.parent.name == "recurring_ical_events"]) >= 90


def moments(data: bytes) -> list[datetime]:
    found = [NOW]
    starts = sorted(m.group(1) for m in _FIRST_START.finditer(data))
    for start in starts[:1]:
        try:
            first = datetime.strptime(start.decode(), "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            continue
        if 1900 <= first.year <= 2100:
            found.append(first - timedelta(days=1))
    return found


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(CORPUS)) for f in FILES])
def test_a_third_party_test_file_is_read_or_clearly_refused(path: Path) -> None:
    data = path.read_bytes()
    name = str(path.relative_to(CORPUS))
    for now in moments(data):
        try:
            found = cal.parse_feed(data, timezone=PARIS, now=now, horizon_days=366)
        except ValidationError as refused:
            assert refused.field == "feed", name
            message = refused.message
            assert message and not INTERNALS.search(message), (name, message)
            assert all(unicodedata.category(ch) not in ("Cc", "Cs") for ch in message), (
                name,
                message,
            )
            assert len(message) <= 500, name
            continue
        assert len({(o.uid, o.key) for o in found}) == len(found), name
        assert all(o.starts_at.tzinfo is not None for o in found), name
        assert all(o.starts_at > now or o.all_day for o in found), name
        created = plan_sync([], found, lead_minutes=15, timezone=PARIS, now=now)
        assert len(created.create) == len(found), name
        stored = [
            Stored(i, o.uid, o.key, o.starts_at, o.all_day, print_, i)
            for i, (o, print_) in enumerate(created.create)
        ]
        again = plan_sync(stored, found, lead_minutes=15, timezone=PARIS, now=now)
        assert (again.create, again.update, again.remove) == ((), (), ()), name
        assert again.unchanged == len(found), name
