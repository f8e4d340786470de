"""Claim the rows that are due and lease them, so that concurrent sweepers share the work.

``SELECT id ... WHERE due <= now ORDER BY due LIMIT n FOR UPDATE SKIP LOCKED``, then one
``UPDATE`` that pushes the rows' due time to the end of the lease, in the caller's
transaction: a row another sweeper holds is skipped, not waited for, and a row whose claimer
dies comes due again when its lease ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute


async def lease_due(
    conn: AsyncConnection,
    model: Any,
    due_at: InstrumentedAttribute[Any],
    *,
    where: Sequence[ColumnElement[bool]],
    now: datetime,
    limit: int,
    lease: Mapping[str, Any],
) -> list[int]:
    """The ids of up to ``limit`` rows of ``model`` matching ``where`` whose ``due_at`` has
    come, oldest first, set to ``lease`` (their new due time, and whatever else goes with it)."""
    ids = list(
        (
            await conn.execute(
                select(model.id)
                .where(*where, due_at <= now)
                .order_by(due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    if ids:
        await conn.execute(update(model).where(model.id.in_(ids)).values(**lease))
    return ids
