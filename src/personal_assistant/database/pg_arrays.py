"""PostgreSQL array literals built in one pass, for the bulk statements' ``unnest`` parameters.

A Python list bound as an array parameter is dumped by psycopg element by element, in Python:
on the scheduler's and the workers' hot paths that cost more than the statements themselves
(about a third of a claim's CPU). These functions build the array's text form with ``join``
instead, and the statement casts it (``CAST(:ids AS bigint[])``), so the server parses it.

Quoting follows PostgreSQL's array input syntax: ``NULL`` unquoted, any other text element in
double quotes with ``\\`` and ``"`` escaped by a backslash. Times go in as ISO 8601 with their
offset (aware datetimes only), each distinct instant formatted once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def ints(values: Iterable[int | None]) -> str:
    """``{1,2,NULL}``: a ``bigint[]`` or ``integer[]`` literal."""
    listed = values if isinstance(values, list) else list(values)
    try:  # ints only, the usual case: formatted in C
        return "{" + ",".join(map(int.__repr__, listed)) + "}"
    except TypeError:  # a None, or another kind of integer
        return "{" + ",".join("NULL" if v is None else str(int(v)) for v in listed) + "}"


def bools(values: Iterable[bool]) -> str:
    """``{t,f}``: a ``boolean[]`` literal."""
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


def texts(values: Iterable[str | None]) -> str:
    """``{"a","b \\"c\\"",NULL}``: a ``text[]`` literal."""
    return "{" + ",".join("NULL" if v is None else _quoted(v) for v in values) + "}"


def times(values: Iterable[datetime | None]) -> str:
    """A ``timestamptz[]`` literal of aware datetimes; each distinct instant formatted once."""
    formatted: dict[datetime, str] = {}
    out = []
    for value in values:
        if value is None:
            out.append("NULL")
            continue
        text = formatted.get(value)
        if text is None:
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r}: pass an aware datetime")
            text = formatted[value] = f'"{value.isoformat()}"'
        out.append(text)
    return "{" + ",".join(out) + "}"


def _quoted(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text for PostgreSQL cannot contain NUL characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
