"""The pure helpers of the plain driver reads: parameters, values as the models store them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from personal_assistant.database import plain
from personal_assistant.errors import ConfigurationError

AT = datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 WHERE id = :id", "SELECT 1 WHERE id = %(id)s"),
        ("a = :a AND b > :b_2", "a = %(a)s AND b > %(b_2)s"),
        ("x::text = :x", "x::text = %(x)s"),  # a cast is not a parameter
        ("title LIKE '5%' OR n = :n", "title LIKE '5%%' OR n = %(n)s"),
        ("'12:30'", "'12:30'"),  # a digit after the colon names nothing
    ],
)
def test_named_parameters_become_psycopgs(sql: str, expected: str) -> None:
    assert plain.pyformat(sql) == expected


def test_times_are_bound_as_the_columns_store_them() -> None:
    paris = AT.astimezone(timezone(timedelta(hours=2)))
    assert plain.bind_time("sqlite", paris) == "2026-03-29 01:30:00.000005"
    assert plain.bind_time("postgresql", paris) is paris
    with pytest.raises(ValueError, match="naive datetime"):
        plain.bind_time("sqlite", AT.replace(tzinfo=None))


@pytest.mark.parametrize(
    "stored",
    [
        "2026-03-29 01:30:00.000005",
        datetime(2026, 3, 29, 1, 30, 0, 5),
        datetime(2026, 3, 29, 3, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_times_are_read_as_aware_utc(stored: object) -> None:
    read = plain.utc(stored)
    assert read == AT and read is not None and read.tzinfo is UTC


def test_null_and_json_columns() -> None:
    assert plain.utc(None) is None
    with pytest.raises(TypeError, match="not a datetime: int"):
        plain.instant(5)
    assert plain.json_value('{"a": [1, "é"]}') == {"a": [1, "é"]}
    assert plain.json_value({"a": 1}) == {"a": 1}
    assert plain.json_value(None) is None


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///pa.db", "sqlite"),
        ("sqlite+aiosqlite:////var/pa.db", "sqlite"),
        ("postgresql://u@h/d", "postgresql"),
        ("postgresql+psycopg://u@h/d", "postgresql"),
        ("postgres://u@h/d", "postgresql"),
    ],
)
def test_the_backend_is_the_schemes(url: str, backend: str) -> None:
    assert plain.backend(url) == backend


def test_another_backend_is_refused_naming_database_url() -> None:
    with pytest.raises(ConfigurationError, match="backend 'mysql' is not supported") as refused:
        plain.backend("mysql://u:secret@h/d")
    assert refused.value.field == "DATABASE_URL"
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///pa.db", Path("pa.db")),
        ("sqlite:////var/lib/pa/pa.db", Path("/var/lib/pa/pa.db")),
        ("sqlite:///my%20files/pa.db", Path("my files/pa.db")),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
    ],
)
def test_an_sqlite_url_names_its_file(url: str, path: Path | None) -> None:
    assert plain.sqlite_path(url) == path
