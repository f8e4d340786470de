"""The driver's own connection under an SQLAlchemy one, for statements on a hot path.

SQLAlchemy turns each row into a ``Row`` and passes each value through its column type (the
UTC conversion of :class:`~personal_assistant.database.types.UTCDateTime`): for the
scheduler's claim, a thousand rows a batch, that cost more of its CPU than the statements'
own work. A statement sent on the driver's connection (psycopg's ``AsyncConnection``) runs in
the same transaction and returns plain tuples. PostgreSQL only: the caller writes the
statement in psycopg's parameter style (``%(name)s``) and converts what it reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

if TYPE_CHECKING:
    import psycopg


async def pg_driver(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """psycopg's connection under ``conn`` (in ``conn``'s transaction, if one is open)."""
    if conn.dialect.name != "postgresql":
        raise ValueError(f"not a PostgreSQL connection: {conn.dialect.name}")
    fairy = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] | None = fairy.driver_connection
    if driver is None:  # a connection the pool has invalidated
        raise RuntimeError("the database connection was closed")
    return driver
