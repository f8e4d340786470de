"""The array literals of ``database/pg_arrays``, read back by PostgreSQL itself.

The bulk statements of the scheduler and the workers pass their rows as array literals built
in Python; whatever a user's text holds (quotes, backslashes, braces, commas, new lines, other
scripts), PostgreSQL must read back exactly the values that went in.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personal_assistant.database import pg_arrays
from support.stack import Db

pytestmark = pytest.mark.integration


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    db = Db(database_url)
    yield db
    db.close()


def read_back(db: Db, literal: str, sql_type: str) -> list[object]:
    return list(db.scalar(f"SELECT CAST(:values AS {sql_type}[])", values=literal))


AWKWARD = [
    "",
    "plain",
    'say "hi"',
    "back\\slash",
    '\\"',
    "{braces}",
    "a,b",
    "NULL",
    "null",
    " spaced ",
    "new\nline\ttab",
    "Grüße, 東京 🌧",
]


def test_text_elements_come_back_exactly(db: Db) -> None:
    values: list[str | None] = [*AWKWARD, None]
    assert read_back(db, pg_arrays.texts(values), "text") == values


# The database is only read: one for all the examples is right.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(st.none(), st.text(st.characters(exclude_characters="\x00")))))
def test_any_text_comes_back_exactly(db: Db, values: list[str | None]) -> None:
    assert read_back(db, pg_arrays.texts(values), "text") == values


def test_ints_bools_and_empty_lists(db: Db) -> None:
    ints = [0, 1, -5, 2**62, None]
    assert read_back(db, pg_arrays.ints(ints), "bigint") == ints
    assert read_back(db, pg_arrays.bools([True, False]), "boolean") == [True, False]
    assert read_back(db, pg_arrays.ints([]), "bigint") == []
    # Not only lists of ints: any iterable, a bool as its number, an integer of another kind.
    assert read_back(db, pg_arrays.ints(iter([3, True, False])), "bigint") == [3, 1, 0]
    assert read_back(db, pg_arrays.ints(n for n in [7, None]), "bigint") == [7, None]
    assert read_back(db, pg_arrays.ints([Decimal(8), 9]), "bigint") == [8, 9]
    assert read_back(db, pg_arrays.texts([]), "text") == []


def test_times_are_the_same_instants_whatever_their_zone(db: Db) -> None:
    base = datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC)
    values = [
        base,
        base.astimezone(timezone(timedelta(hours=5, minutes=30))),
        base + timedelta(microseconds=1),
        None,
        base,
    ]
    back = read_back(db, pg_arrays.times(values), "timestamptz")
    assert back == values  # aware datetimes compare as instants


def test_naive_times_and_nul_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        pg_arrays.times([datetime(2026, 1, 1)])
    with pytest.raises(ValueError, match="NUL"):
        pg_arrays.texts(["a\x00b"])
