"""What differs between the two databases (PostgreSQL and SQLite) in the statements we build."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    any_,
    bindparam,
    cast,
    false,
    func,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType

from personal_assistant.database import pg_arrays


def dialect_insert(conn: AsyncConnection | Connection, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def id_in(
    conn: AsyncConnection | Connection, column: Any, ids: Collection[int]
) -> ColumnElement[bool]:
    """``column`` is one of ``ids``.

    On PostgreSQL ``column = ANY(CAST(:ids AS bigint[]))``: one parameter, so the statement's
    text is the same whatever the number of ids, and psycopg parses it once and then uses a
    prepared statement (an ``IN`` list of 100 ids is a new text of 100 parameters each time
    its length changes, parsed by psycopg in Python every time). Elsewhere ``IN (...)``.

    The ids go as their array's text in an untyped parameter, which the server reads once as
    a ``bigint[]`` constant. Typed as text (``CAST(:ids::VARCHAR AS bigint[])``), the cast is
    an expression PostgreSQL does not fold: a scan of the table (statistics taken before a
    new deployment's first burst say it is tiny) parsed the ids again for every row, 17 ms a
    statement over 3,000 runs (tests/integration/test_keyed_plans.py).
    """
    if conn.dialect.name == "postgresql":
        ids_text = bindparam(None, pg_arrays.ints(ids), type_=NullType())  # no ::VARCHAR
        return column == any_(cast(ids_text, ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def unindexed(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """``condition`` in a form that no index matches: ``coalesce(condition, false)``, which
    keeps the same rows.

    For a filter on rows another condition finds by key, so that PostgreSQL keeps to the key:
    ``id = ANY(:ids) AND state = 'queued'`` is at most a message's runs, found by primary key in
    about 1 ms. Statistics taken while few runs were queued (the usual case, a burst being
    rare) say ``state = 'queued'`` matches about one row, and PostgreSQL walked the ``(state,
    lease_expires_at)`` index instead, through every queued run of the burst: 78 ms a claim of
    100 runs with 20,000 queued (``EXPLAIN ANALYZE``; tests/integration/test_keyed_plans.py).
    """
    return func.coalesce(condition, false())
