"""The dispatch of owed runs in SQL: which runs are owed a message, and their leases.

A queued run is owed when its dispatch lease has expired (:func:`owed_queued`). Never
published (``published_at`` NULL), it is sent at once. Published and still unclaimed, its
message may be lost or may still wait in the run queue: while messages wait there, it is
presumed among them and its lease renewed (postponed), unless the queue has visibly moved past
it (:func:`resend_or_postpone`). A retry whose time has come is owed too (:func:`due_retries`);
under fair dispatch, runs never sent and retries go within their owners' shares
(:func:`owed_fairly`).

One select per state, so each walks its own ``(state, lease_expires_at)`` index range in order
instead of sorting every owed run. Rows are locked ``FOR NO KEY UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import RunState
from personal_assistant.database.dialect import id_in, unindexed
from personal_assistant.database.models import TaskRun
from personal_assistant.runs import fair_store
from personal_assistant.runs.fair_dispatch import Limits, share

log = logging.getLogger(__name__)

#: Messages published this much apart may be taken out of order (prefetch, several workers).
REORDER_SLACK = timedelta(seconds=5)

#: An owed queued run: ``(run_id, published_at)``.
OwedQueued = tuple[int, datetime | None]


async def owed_queued(
    conn: AsyncConnection, now: datetime, *, limit: int, fair: bool
) -> list[OwedQueued]:
    """Queued runs whose dispatch lease has expired, oldest lease first, locked.

    Under fair dispatch (``fair``) only published ones: runs never sent go by
    :func:`owed_fairly`.
    """
    query = select(TaskRun.id, TaskRun.published_at).where(
        TaskRun.state == RunState.QUEUED, TaskRun.lease_expires_at <= now
    )
    if fair:
        query = query.where(TaskRun.published_at.is_not(None))
    rows = await conn.execute(
        query.order_by(TaskRun.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )
    return [(run_id, published) for run_id, published in rows]


async def newest_running_publish(conn: AsyncConnection) -> datetime | None:
    """When the newest message that a worker has taken (its run now running) was published."""
    return (
        await conn.execute(
            select(func.max(TaskRun.published_at)).where(TaskRun.state == RunState.RUNNING)
        )
    ).scalar()


def resend_or_postpone(
    queued: Sequence[OwedQueued], *, waiting: bool, passed: datetime | None
) -> tuple[list[int], list[int]]:
    """``(to send, to postpone)`` among owed queued runs (pure).

    Runs never published are sent. A published one is sent again when no message waits in the
    run queue (``waiting`` false, or unknown); while some wait, only when a run published more
    than :data:`REORDER_SLACK` after it is running (``passed``: the newest such publish), its
    own message, first in and first out, then being lost. The others are postponed.
    """
    send = [run_id for run_id, published in queued if published is None]
    postponed: list[int] = []
    for run_id, published in queued:
        if published is None:
            continue
        if not waiting or (passed is not None and published + REORDER_SLACK < passed):
            send.append(run_id)
        else:
            postponed.append(run_id)
    return send, postponed


async def due_retries(conn: AsyncConnection, now: datetime, *, limit: int) -> list[int]:
    """Retries whose time has come, oldest first, locked."""
    rows = await conn.execute(
        select(TaskRun.id)
        .where(TaskRun.state == RunState.RETRYING, TaskRun.lease_expires_at <= now)
        .order_by(TaskRun.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )
    return list(rows.scalars().all())


async def owed_fairly(
    conn: AsyncConnection, now: datetime, *, limits: Limits, limit: int
) -> list[int]:
    """Runs never sent and retries now due, up to ``limit``, within their owners' shares.

    Locked ``SKIP LOCKED`` and taken round robin across users (:mod:`fair_store`); the
    ones :func:`~fair_dispatch.share` holds keep waiting, as data. Nothing is skipped here:
    a queued run over the hourly quota waits for the hour to allow it.
    """
    batch = await fair_store.owed_runs(conn, now=now, limits=limits, limit=limit)
    shares = share(batch.runs, batch.usage, limits, at_claim=False)
    if shares.hold:
        log.info("event=runs_waiting_for_room held=%s", len(shares.hold))
    return list(shares.send)


async def mark_sent(
    conn: AsyncConnection,
    ids: Sequence[int],
    postponed: Sequence[int],
    *,
    now: datetime,
    lease: timedelta,
) -> None:
    """Renew the leases of postponed runs; record the runs to send queued and published."""
    if postponed:
        await conn.execute(
            update(TaskRun)
            .where(id_in(conn, TaskRun.id, postponed))
            .values(lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
    if ids:
        await conn.execute(
            update(TaskRun)
            .where(id_in(conn, TaskRun.id, ids))
            .values(state=RunState.QUEUED, lease_expires_at=now + lease, published_at=now)
            .execution_options(synchronize_session=False)
        )


async def mark_unsent(conn: AsyncConnection, run_ids: Sequence[int], *, now: datetime) -> None:
    """Record queued runs unsent (the broker refused them): owed at once."""
    await conn.execute(
        update(TaskRun)
        .where(id_in(conn, TaskRun.id, run_ids), unindexed(TaskRun.state == RunState.QUEUED))
        .values(published_at=None, lease_expires_at=now)
        .execution_options(synchronize_session=False)
    )
