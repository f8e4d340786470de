"""Per-user quotas: how many tasks one user may hold, and import per hour.

So that one user cannot fill the scheduler for everyone, two limits, each 0 for none:

* ``MAX_ACTIVE_TASKS_PER_USER``: tasks that are active or paused (a paused task is one resume
  away from firing). Checked wherever a task enters those states: ``create_task``, an import
  (its active and paused tasks), and a resume or schedule edit that revives a completed or
  failed task.
* ``MAX_IMPORTS_PER_HOUR``: tasks imported into a user in the last hour, whatever their
  status, counted in a ledger (``task_imports``) rather than among the tasks, so that deleting
  what was imported gives nothing back. One file larger than the limit is refused outright.

Reminders made by a calendar sync are not checked here: a sync must not fail half-way
because its owner is at the limit. They are bounded by the feed's own limits (the occurrences
of one feed in its horizon) and they do count among the owner's active tasks, so a user
whose reminders fill the quota cannot create more tasks by hand.

Each check runs in the transaction that writes, after locking the owner's row
(:func:`lock_user`: ``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL, which serialises the
checks of one user without blocking the rows that merely reference it; SQLite's ``BEGIN
IMMEDIATE`` serialises every writer). Two concurrent creates cannot both see room for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.core.states import TaskStatus
from personal_assistant.database.models import AITask, TaskImport, User
from personal_assistant.errors import QuotaError

if TYPE_CHECKING:
    from personal_assistant.config import Settings

ACTIVE_SETTING = "MAX_ACTIVE_TASKS_PER_USER"
IMPORTS_SETTING = "MAX_IMPORTS_PER_HOUR"
#: The statuses that count against ``MAX_ACTIVE_TASKS_PER_USER``.
HELD = (TaskStatus.ACTIVE.value, TaskStatus.PAUSED.value)
IMPORT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Limits:
    """The per-user limits; 0: no limit."""

    active_tasks: int = 10_000
    imports_per_hour: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_active_tasks_per_user, settings.max_imports_per_hour)


# --- the rules (pure) -------------------------------------------------------------------------


def check_active(user_id: int, held: int, adding: int, limit: int) -> None:
    """Refuse ``adding`` active or paused tasks to a user holding ``held``, past ``limit``."""
    if limit and adding > 0 and held + adding > limit:
        raise QuotaError(
            f"user {user_id} has {held} active or paused tasks and may have at most {limit}: "
            f"{_adding(adding)} would pass the limit (delete some, or wait for some to "
            "complete)",
            field=ACTIVE_SETTING,
            limit=limit,
        )


def check_import(user_id: int, recent: int, adding: int, limit: int) -> None:
    """Refuse an import of ``adding`` tasks after ``recent`` in the last hour, past ``limit``."""
    if limit and adding > 0 and recent + adding > limit:
        raise QuotaError(
            f"user {user_id} may import at most {limit} tasks per hour; this file holds "
            f"{adding}, after {recent} tasks imported in the last hour",
            field=IMPORTS_SETTING,
            limit=limit,
        )


def _adding(count: int) -> str:
    return "one more" if count == 1 else f"{count} more"


# --- the database -----------------------------------------------------------------------------


#: The advisory-lock namespace of quota checks (any constant; its high bits keep it apart from
#: other advisory locks, should there be any).
QUOTA_LOCK = 0x5051 << 48


async def lock_user(conn: AsyncConnection, user_id: int) -> bool:
    """Serialise this user's quota checks until the transaction ends; False: no such user.

    On PostgreSQL a transaction-level advisory lock, not a lock on the user's row: the digest
    sweep locks user rows (``FOR NO KEY UPDATE SKIP LOCKED``) while it writes, and a row lock
    here would make a task creation wait for a digest. SQLite serialises writers anyway.
    """
    if conn.dialect.name == "postgresql":
        key = QUOTA_LOCK ^ (user_id & 0xFFFF_FFFF_FFFF)
        await conn.execute(select(func.pg_advisory_xact_lock(key)))
    found = await conn.scalar(select(User.id).where(User.id == user_id))
    return found is not None


async def held_tasks(conn: AsyncConnection, user_id: int) -> int:
    """The user's tasks that count against ``MAX_ACTIVE_TASKS_PER_USER``."""
    count = await conn.scalar(
        select(func.count())
        .select_from(AITask)
        .where(AITask.user_id == user_id, AITask.status.in_(HELD))
    )
    return int(count or 0)


async def reserve_active(conn: AsyncConnection, user_id: int, adding: int, limits: Limits) -> None:
    """Check that ``adding`` more active or paused tasks fit (the user's row locked first)."""
    if limits.active_tasks and adding > 0:
        check_active(user_id, await held_tasks(conn, user_id), adding, limits.active_tasks)


async def record_import(
    conn: AsyncConnection, user_id: int, tasks: int, limits: Limits, *, now: datetime
) -> None:
    """Check ``MAX_IMPORTS_PER_HOUR`` and record this import in the ledger.

    The user's row must be locked. The user's entries older than the window are deleted.
    """
    since = now - IMPORT_WINDOW
    await conn.execute(
        delete(TaskImport).where(TaskImport.user_id == user_id, TaskImport.imported_at <= since)
    )
    recent = await conn.scalar(
        select(func.coalesce(func.sum(TaskImport.tasks), 0)).where(
            TaskImport.user_id == user_id, TaskImport.imported_at > since
        )
    )
    check_import(user_id, int(recent or 0), tasks, limits.imports_per_hour)
    if tasks:
        await conn.execute(insert(TaskImport).values(user_id=user_id, imported_at=now, tasks=tasks))
