"""A health :class:`~.health.Snapshot` read from the database: its statements, written once, and
the two ways to run them.

:func:`take_snapshot` runs them on an engine (doctor, the HTTP API, the deployment checks);
:func:`read_snapshot` on a :class:`~personal_assistant.database.plain.PlainReader`
(``pa status``, which answers without loading SQLAlchemy). Both hand the rows to
:func:`build_snapshot`, which is pure. The statements use ``:name`` parameters and literal
states, so they are the same text for SQLAlchemy's ``text()``, ``sqlite3`` and psycopg.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from personal_assistant.core.states import RunState, TaskStatus
from personal_assistant.database.plain import PlainReader, bind_time, instant, json_value, utc
from personal_assistant.workers.utils.health import ProcessBeat, Snapshot, WorkerLoad

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

_OPEN = ", ".join(f"'{s}'" for s in (RunState.QUEUED, RunState.RETRYING, RunState.RUNNING))
_RUNNING = f"'{RunState.RUNNING}'"
_ACTIVE = f"'{TaskStatus.ACTIVE}'"

#: Each statement of a snapshot, by name; ``:now`` is the moment the snapshot is taken at.
STATEMENTS: dict[str, str] = {
    "open_runs": f"SELECT state, count(*) FROM task_runs WHERE state IN ({_OPEN}) GROUP BY state",
    "oldest_queued": (f"SELECT min(queued_at) FROM task_runs WHERE state = '{RunState.QUEUED}'"),
    "most_overdue": (
        f"SELECT min(next_run_at) FROM ai_tasks WHERE status = {_ACTIVE} AND next_run_at <= :now"
    ),
    "expired": (
        "SELECT count(*), min(lease_expires_at) FROM task_runs"
        f" WHERE state = {_RUNNING} AND lease_expires_at <= :now"
    ),
    "workers": (
        "SELECT r.worker_id, count(*), max(h.beat_at), min(r.started_at) FROM task_runs r"
        " LEFT OUTER JOIN worker_heartbeats h ON h.worker_id = r.worker_id"
        f" WHERE r.state = {_RUNNING} AND r.worker_id IS NOT NULL GROUP BY r.worker_id"
    ),
    "processes": (
        "SELECT worker_id, role, beat_at, started_at, queues, version, config"
        " FROM worker_heartbeats ORDER BY worker_id"
    ),
    "last_finished": "SELECT max(finished_at) FROM task_runs",
    "active": f"SELECT count(*) FROM ai_tasks WHERE status = {_ACTIVE}",
}

Rows = Sequence[Sequence[Any]]


def parameters(dialect: str, now: datetime) -> dict[str, object]:
    return {"now": bind_time(dialect, now)}


async def take_snapshot(engine: AsyncEngine, now: datetime) -> Snapshot:
    """The snapshot at ``now``, read through ``engine``."""
    from sqlalchemy import text

    values = parameters(engine.dialect.name, now)
    answers: dict[str, Rows] = {}
    async with engine.connect() as conn:
        for name, sql in STATEMENTS.items():
            answers[name] = [tuple(row) for row in await conn.execute(text(sql), values)]
    return build_snapshot(now, answers)


def read_snapshot(reader: PlainReader, now: datetime) -> Snapshot:
    """The snapshot at ``now``, read through a plain driver connection."""
    values = parameters(reader.dialect, now)
    return build_snapshot(now, {name: reader.rows(sql, values) for name, sql in STATEMENTS.items()})


def build_snapshot(now: datetime, answers: Mapping[str, Rows]) -> Snapshot:
    """The snapshot the rows of :data:`STATEMENTS` describe (pure)."""

    def first(name: str) -> Any:
        rows = answers[name]
        return rows[0][0] if rows else None

    expired, oldest_expired = answers["expired"][0] if answers["expired"] else (0, None)
    return Snapshot(
        taken_at=now,
        open_runs={str(state): int(count) for state, count in answers["open_runs"]},
        oldest_queued_at=utc(first("oldest_queued")),
        most_overdue_at=utc(first("most_overdue")),
        expired_running=int(expired or 0),
        last_finished_at=utc(first("last_finished")),
        active_tasks=int(first("active") or 0),
        workers=tuple(
            WorkerLoad(str(worker), int(count), utc(beat), utc(claimed))
            for worker, count, beat, claimed in answers["workers"]
        ),
        processes=tuple(_process(row) for row in answers["processes"]),
        oldest_expired_lease_at=utc(oldest_expired),
    )


def _process(row: Sequence[Any]) -> ProcessBeat:
    worker_id, role, beat_at, started_at, queues, version, config = row
    return ProcessBeat(
        worker_id=worker_id,
        role=role,
        beat_at=instant(beat_at),
        started_at=instant(started_at),
        queues=tuple(q for q in (queues or "").split(",") if q),
        version=version,
        config=json_value(config) or {},
    )
