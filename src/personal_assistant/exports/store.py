"""The database side of exports: one user's rows read for an export, and an import written.

An export reads the user, tasks, runs and notifications from one snapshot, then builds,
renders and writes the file off the event loop (:func:`export_user`).

An import (:func:`import_export`) validates the whole document first, then writes everything
in one transaction: an invalid file imports nothing and raises ``ValidationError``. Runs keep
their states and results. Importing the same export twice into one user is refused with
:class:`ConflictError`, and nothing is written: a task of the export whose ``title`` and
``created_at`` are those of a task the user already has marks the export as imported already.
The unique keys of runs ``(task_id, scheduled_for)`` and notifications ``(run_id, channel)``
hold whatever happens. The owner's quotas (:mod:`~personal_assistant.tasks.quotas`: active
tasks, tasks imported per hour) are checked in the transaction that writes: an import past a
limit writes nothing and raises ``QuotaError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personal_assistant.clock import utcnow
from personal_assistant.database.models import AITask, Notification, TaskRun, User
from personal_assistant.errors import ConflictError, NotFoundError
from personal_assistant.exports.document import (
    NOTIFICATION_FIELDS,
    RUN_FIELDS,
    TASK_FIELDS,
    USER_FIELDS,
    ExportFormat,
    ParsedExport,
    build_document,
    iso,
    parse_document,
    rebase,
    render,
)
from personal_assistant.exports.files import export_filename, write_atomic
from personal_assistant.tasks import quotas


def _columns(model: Any, fields: Sequence[str]) -> list[Any]:
    return [getattr(model, name) for name in fields]


async def read_document(engine: AsyncEngine, user_id: int, *, now: datetime) -> dict[str, Any]:
    """The export document of one user, read from one snapshot.

    The rows are read on the event loop; the document is built from them in a worker thread
    (CPU-bound for a user with many runs, and the loop holds a worker's AI runs).
    """
    user, tasks, runs, notes = await _read_rows(engine, user_id)
    return await asyncio.to_thread(build_document, user, tasks, runs, notes, now=now)


_Rows = list[Mapping[Any, Any]]


async def _read_rows(
    engine: AsyncEngine, user_id: int
) -> tuple[Mapping[Any, Any], _Rows, _Rows, _Rows]:
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            user = (
                await conn.execute(select(*_columns(User, USER_FIELDS)).where(User.id == user_id))
            ).first()
            if user is None:
                raise NotFoundError(f"user {user_id} not found", field="user_id")
            tasks = await conn.execute(
                select(*_columns(AITask, TASK_FIELDS))
                .where(AITask.user_id == user_id)
                .order_by(AITask.id)
            )
            runs = await conn.execute(
                select(*_columns(TaskRun, RUN_FIELDS))
                .join(AITask, AITask.id == TaskRun.task_id)
                .where(AITask.user_id == user_id)
                .order_by(TaskRun.task_id, TaskRun.scheduled_for)
            )
            notes = await conn.execute(
                select(*_columns(Notification, NOTIFICATION_FIELDS))
                .join(TaskRun, TaskRun.id == Notification.run_id)
                .where(Notification.user_id == user_id)
                .order_by(TaskRun.task_id, TaskRun.scheduled_for, Notification.channel)
            )
            return (
                user._mapping,
                [r._mapping for r in tasks],
                [r._mapping for r in runs],
                [r._mapping for r in notes],
            )


async def export_user(
    engine: AsyncEngine,
    user_id: int,
    export_dir: Path,
    *,
    fmt: ExportFormat = "json",
    now: datetime,
    path: Path | None = None,
) -> Exported:
    """Write the user's export to ``path`` (default: a new file in ``export_dir``).

    Building, rendering and writing run in worker threads, never on the event loop."""
    document = await read_document(engine, user_id, now=now)
    target = path if path is not None else export_dir / export_filename(user_id, fmt, now)

    def write() -> None:
        write_atomic(target, render(document, fmt, now))

    await asyncio.to_thread(write)
    counts = (len(document[table]) for table in ("tasks", "runs", "notifications"))
    return Exported(target, *counts)


@dataclass(frozen=True)
class Exported:
    path: Path
    tasks: int
    runs: int
    notifications: int


@dataclass(frozen=True)
class ImportReport:
    user_id: int
    created_user: bool
    tasks: int
    runs: int
    notifications: int


async def import_export(
    engine: AsyncEngine,
    data: object,
    *,
    user_id: int | None = None,
    now: datetime | None = None,
    limits: quotas.Limits | None = None,
) -> ImportReport:
    """Import a decoded JSON export for ``user_id``, or for a new user made from its ``user``.

    Everything is validated before the one transaction that writes every row, which checks
    the owner's ``limits`` first (default: the settings' defaults). Tasks are due from ``now``
    (default: the clock), see :func:`imported_next_run`. Validation and the schedule maths run
    in a worker thread: a large file is seconds of CPU.
    """
    when = utcnow() if now is None else now
    parsed = await asyncio.to_thread(lambda: rebase(parse_document(data), when))
    try:
        async with engine.begin() as conn:
            target = user_id
            if target is None:
                target = (
                    await conn.execute(insert(User).values(parsed.user).returning(User.id))
                ).scalar_one()
                await quotas.lock_user(conn, target)
            else:
                await _check_target(conn, parsed, target)
            allowed = quotas.Limits() if limits is None else limits
            await _check_quotas(conn, parsed, target, allowed, when)
            runs, notes = await _write(conn, parsed, target)
    except IntegrityError:
        raise ConflictError("some rows of this export exist already", field="file") from None
    return ImportReport(target, user_id is None, len(parsed.tasks), runs, notes)


async def _check_target(conn: AsyncConnection, parsed: ParsedExport, user_id: int) -> None:
    # The lock serialises imports into one user (and the quota checks of every writer of that
    # user's tasks), so that two cannot both pass the checks below.
    if not await quotas.lock_user(conn, user_id):
        raise NotFoundError(f"user {user_id} not found", field="user_id")
    owned = await conn.execute(
        select(AITask.title, AITask.created_at).where(AITask.user_id == user_id)
    )
    existing = {(title, created_at) for title, created_at in owned}
    for index, (_, row) in enumerate(parsed.tasks):
        if (row["title"], row["created_at"]) in existing:
            raise ConflictError(
                f"user {user_id} already has the task {row['title']!r} created at "
                f"{iso(row['created_at'])}: this export was imported already",
                field=f"tasks[{index}]",
            )


async def _check_quotas(
    conn: AsyncConnection, parsed: ParsedExport, user_id: int, limits: quotas.Limits, now: datetime
) -> None:
    """The owner's limits, its row locked: tasks per hour (recorded), then active tasks."""
    await quotas.record_import(conn, user_id, len(parsed.tasks), limits, now=now)
    held = sum(1 for _, row in parsed.tasks if row["status"] in quotas.HELD)
    await quotas.reserve_active(conn, user_id, held, limits)


async def _write(conn: AsyncConnection, parsed: ParsedExport, user_id: int) -> tuple[int, int]:
    task_ids: dict[int, int] = {}
    for old_id, row in parsed.tasks:  # one by one: new ids follow the export's order
        statement = insert(AITask).values(user_id=user_id, **row).returning(AITask.id)
        task_ids[old_id] = (await conn.execute(statement)).scalar_one()
    run_ids: dict[int, tuple[int, int]] = {}
    if parsed.runs:
        rows = [{**row, "task_id": task_ids[task]} for _, task, row in parsed.runs]
        result = await conn.execute(
            insert(TaskRun).returning(TaskRun.id, sort_by_parameter_order=True), rows
        )
        for (old_id, task, _), new_id in zip(parsed.runs, result.scalars(), strict=True):
            run_ids[old_id] = (new_id, task_ids[task])
    if parsed.notifications:
        await conn.execute(
            insert(Notification),
            [
                {**row, "run_id": run_ids[run][0], "task_id": run_ids[run][1], "user_id": user_id}
                for run, row in parsed.notifications
            ],
        )
    return len(parsed.runs), len(parsed.notifications)
