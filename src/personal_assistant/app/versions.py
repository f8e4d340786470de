"""A task's version as an HTTP entity tag, and edits that refuse a stale one.

:func:`etag` is a strong tag of what the API answers for a task: the SHA-256 of its JSON
(:func:`personal_assistant.app.views.task`), so it changes whenever anything shown changes (an
edit, a pause, and the scheduler moving ``next_run_at`` too). :class:`Versions` makes an edit
conditional: given the tag the caller last saw (``If-Match``), it locks the owner and the task,
compares, and writes in that same transaction, so of two editors who read the same version
the second is refused (:class:`StaleVersion`, 412) instead of overwriting the first's change.
Without a tag the edit is unconditional, as before.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from personal_assistant.app import views
from personal_assistant.app._base import Part
from personal_assistant.database.models import AITask
from personal_assistant.errors import ConflictError, NotFoundError
from personal_assistant.tasks import inputs as check
from personal_assistant.tasks import quotas
from personal_assistant.tasks.manager import AITaskManager

__all__ = ["FIELD", "StaleVersion", "Versions", "etag", "matches", "none_match"]

FIELD = "If-Match"
T = TypeVar("T")


class StaleVersion(ConflictError):
    """The task changed since the caller read it (``If-Match`` names another version): read it
    again and redo the edit. The API answers 412 Precondition Failed."""


def etag(task: AITask) -> str:
    """The strong entity tag of the task as the API shows it: ``"<32 hex digits>"``."""
    shown = json.dumps(views.task(task), sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(shown.encode()).hexdigest()[:32] + '"'


def _tags(header: str) -> list[str]:
    return [part.strip() for part in header.split(",") if part.strip()]


def matches(header: str, current: str) -> bool:
    """``If-Match``: ``*``, or one of the listed tags is ``current`` (strong comparison: a weak
    ``W/`` tag never matches)."""
    tags = _tags(header)
    return "*" in tags or current in tags


def none_match(header: str, current: str) -> bool:
    """``If-None-Match`` fails (the client's copy is current): ``*``, or a listed tag is
    ``current`` (weak comparison: ``W/"x"`` matches ``"x"``)."""
    tags = [t.removeprefix("W/") for t in _tags(header)]
    return "*" in tags or current in tags


class Versions(Part):
    """Edits of a task that first check the version the caller saw (``if_match``; None: no
    check). Each is :class:`~personal_assistant.tasks.manager.AITaskManager`'s, run in the
    transaction that checked."""

    async def edit(
        self, task_id: int, user_id: int, if_match: str | None, **changes: Any
    ) -> AITask:
        return await self._guarded(
            task_id, user_id, if_match, lambda m: m.update_task(task_id, user_id, **changes)
        )

    async def pause(self, task_id: int, user_id: int, if_match: str | None) -> AITask:
        return await self._guarded(
            task_id, user_id, if_match, lambda m: m.pause_task(task_id, user_id)
        )

    async def resume(self, task_id: int, user_id: int, if_match: str | None) -> AITask:
        return await self._guarded(
            task_id, user_id, if_match, lambda m: m.resume_task(task_id, user_id)
        )

    async def delete(self, task_id: int, user_id: int, if_match: str | None) -> None:
        await self._guarded(task_id, user_id, if_match, lambda m: m.delete_task(task_id, user_id))

    async def _guarded(
        self,
        task_id: int,
        user_id: int,
        if_match: str | None,
        write: Callable[[AITaskManager], Awaitable[T]],
    ) -> T:
        if if_match is None:
            return await write(AITaskManager(self.settings, engine=self.engine, clock=self.clock))
        known_task = check.record_id(task_id, "task_id")
        known_user = check.record_id(user_id, "user_id")
        if known_task is None or known_user is None:
            raise NotFoundError("task not found (the id is beyond 64 bits)", field="task_id")
        async with self.engine.begin() as conn:
            # The owner first, then the task, as the manager locks them (no deadlock with it).
            await quotas.lock_user(conn, known_user)
            async with AsyncSession(bind=conn) as session:
                task = await session.scalar(
                    select(AITask)
                    .where(AITask.id == known_task, AITask.user_id == known_user)
                    .with_for_update()
                )
                if task is None:
                    raise NotFoundError(f"task {known_task} not found", field="task_id")
                if not matches(if_match, etag(task)):
                    raise StaleVersion(
                        f"task {known_task} changed since this version was read: read it "
                        "again, and redo the change on what it is now",
                        field=FIELD,
                    )
            # The manager's sessions join this transaction (SQLAlchemy joins a session bound to
            # a connection already in one): its write commits with the check, or not at all.
            bound = AITaskManager(self.settings, engine=cast(AsyncEngine, conn), clock=self.clock)
            return await write(bound)
