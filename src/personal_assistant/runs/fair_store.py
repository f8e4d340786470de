"""What fair dispatch reads: per-user counts, and the runs owed a dispatch in fair order.

Counts are read only for the users at hand (a claimed batch's, or those with owed runs), each
from the index ``(user_id, state, published_at)``: a user's open runs are at most the cap, and
the runs sent in the last hour at most the hourly quota, so a count costs what the limits
allow, not what the user owns. The owed runs (never sent, or retries now due) are ranked per
user by how long they have been owed and taken rank by rank (``row_number() OVER (PARTITION BY
user_id ...)``): round robin, in SQL, so one dispatch of a bounded size is fair by itself.
A run is a candidate only while its rank plus its owner's open runs is within the cap, so
users with no room take no place in a dispatch, however many of them wait.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, and_, bindparam, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import RunState
from personal_assistant.database import pg_arrays
from personal_assistant.database.dialect import unindexed
from personal_assistant.database.models import TaskRun
from personal_assistant.runs.fair_dispatch import (
    HOUR,
    Limits,
    Owed,
    Usage,
    round_robin,
)

#: Users per ``IN`` list on SQLite (it allows 32,766 parameters a statement).
CHUNK = 5000
_OPEN_STATES = (RunState.QUEUED, RunState.RUNNING)
_EVERY_STATE = tuple(RunState)


async def _count(
    conn: AsyncConnection, users: Collection[int], *where: ColumnElement[bool]
) -> dict[int, int]:
    """Per user, the runs matching ``where``: one index range per user.

    On PostgreSQL, a count per element of the user array (``unnest``), so that each reads its
    user's range of the index whatever the statistics say: filtering a scan of the whole table
    by a list of a thousand users took 0.5 s a batch when the planner guessed wrong.
    """
    if not users:
        return {}
    if conn.dialect.name == "postgresql":
        owners = (
            func.unnest(cast(bindparam("users", pg_arrays.ints(sorted(users))), ARRAY(BigInteger)))
            .table_valued("id")
            .render_derived(name="u")
        )
        counted = select(func.count()).where(TaskRun.user_id == owners.c.id, *where)
        rows = await conn.execute(select(owners.c.id, counted.scalar_subquery()))
        return {int(user): int(n) for user, n in rows if n}
    counts: dict[int, int] = {}
    for part in _chunks(users):
        rows = await conn.execute(
            select(TaskRun.user_id, func.count())
            .where(TaskRun.user_id.in_(part), *where)
            .group_by(TaskRun.user_id)
        )
        counts.update({int(user): int(n) for user, n in rows if user is not None})
    return counts


def _chunks(users: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(users)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _open() -> tuple[ColumnElement[bool], ...]:
    return (TaskRun.state.in_(_OPEN_STATES), TaskRun.published_at.is_not(None))


async def open_runs(conn: AsyncConnection, users: Collection[int]) -> dict[int, int]:
    """Each user's runs in the broker or running (published ``queued``, or ``running``)."""
    return await _count(conn, users, *_open())


async def hour_runs(
    conn: AsyncConnection, users: Collection[int], *, now: datetime, waiting: bool
) -> dict[int, int]:
    """Each user's runs sent in the hour before ``now``; with ``waiting``, plus those waiting.

    Every state is named, so that the index is read once per state from the hour's start on,
    not across every run the user ever had.
    """
    counts = await _count(
        conn, users, TaskRun.state.in_(_EVERY_STATE), TaskRun.published_at >= now - HOUR
    )
    if waiting:
        for user, n in (await _count(conn, users, _waiting())).items():
            counts[user] = counts.get(user, 0) + n
    return counts


async def usage(
    conn: AsyncConnection, users: Collection[int], limits: Limits, *, now: datetime, at_claim: bool
) -> Usage:
    """What :func:`~fair_dispatch.share` needs for ``users``: only the counts a limit uses."""
    opened = await open_runs(conn, users) if limits.cap else {}
    hour = await hour_runs(conn, users, now=now, waiting=at_claim) if limits.per_hour else {}
    return Usage(opened, hour)


def _waiting() -> ColumnElement[bool]:
    return and_(TaskRun.state == RunState.QUEUED, TaskRun.published_at.is_(None))


def _owed(now: datetime) -> ColumnElement[bool]:
    """Never sent (``run_now``, held for a share, a failed publish) or a retry, now due."""
    return and_(
        TaskRun.lease_expires_at <= now, or_(_waiting(), TaskRun.state == RunState.RETRYING)
    )


@dataclass(frozen=True)
class OwedBatch:
    runs: tuple[Owed, ...]  # locked, in fair order
    usage: Usage


async def owed_runs(
    conn: AsyncConnection, *, now: datetime, limits: Limits, limit: int
) -> OwedBatch:
    """Up to ``limit`` owed runs within the cap, locked ``SKIP LOCKED``, round robin by owner.

    One statement ranks the owed runs per owner and counts each owner's open runs once; a run
    is a candidate when its rank plus its owner's open runs is within the cap, so owners with
    no room take no place in the batch.
    """
    rank = (
        func.row_number()
        .over(partition_by=TaskRun.user_id, order_by=(TaskRun.lease_expires_at, TaskRun.id))
        .label("rank")
    )
    ranked = (
        select(TaskRun.id, TaskRun.user_id, TaskRun.lease_expires_at.label("since"), rank)
        .where(_owed(now))
        .cte("owed")
    )
    if limits.cap:
        owners = select(ranked.c.user_id).where(ranked.c.user_id.is_not(None)).distinct().subquery()
        counted = select(func.count()).where(TaskRun.user_id == owners.c.user_id, *_open())
        room = select(owners.c.user_id, counted.scalar_subquery().label("open")).subquery()
        query = (
            select(ranked.c.id, ranked.c.user_id, room.c.open)
            .select_from(ranked.outerjoin(room, room.c.user_id == ranked.c.user_id))
            .where(or_(ranked.c.user_id.is_(None), ranked.c.rank + room.c.open <= limits.cap))
        )
    else:
        query = select(ranked.c.id, ranked.c.user_id, literal(0).label("open"))
    candidates = (
        await conn.execute(query.order_by(ranked.c.rank, ranked.c.since, ranked.c.id).limit(limit))
    ).all()
    opened = {int(user): int(n) for _, user, n in candidates if user is not None and n}
    if not candidates:
        return OwedBatch((), Usage(opened, {}))
    locked = (
        await conn.execute(
            select(TaskRun.id, TaskRun.user_id, TaskRun.state, TaskRun.lease_expires_at)
            .where(TaskRun.id.in_([run_id for run_id, _, _ in candidates]), unindexed(_owed(now)))
            .order_by(TaskRun.id)
            .with_for_update(skip_locked=True, key_share=True)
        )
    ).all()
    fresh = {run_id: state == RunState.QUEUED for run_id, _, state, _ in locked}
    owner = {run_id: user for run_id, user, _, _ in locked}
    # ``since`` is never NULL here: the owed runs are those whose lease is ``<= now``.
    order = round_robin((run_id, user, since or now) for run_id, user, _, since in locked)
    runs = tuple(Owed(run_id, owner[run_id], fresh[run_id]) for run_id in order)
    users = {u for u in owner.values() if u is not None}
    hour = await hour_runs(conn, users, now=now, waiting=False) if limits.per_hour else {}
    return OwedBatch(runs, Usage(opened, hour))
