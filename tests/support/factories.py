"""Rows a test starts from, made as users make them: through ``AITaskManager``.

The scheduler tests need "a user with due tasks" again and again; building it here keeps one
way of doing so (the manager's checks, its ``next_run_at``) instead of a copy per file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from personal_assistant.config import Settings
from personal_assistant.tasks.manager import AITaskManager

#: A daily task at 09:00 in the user's zone.
DAILY_9: Mapping[str, Any] = {"kind": "daily", "times": ["09:00"]}


def user_with_tasks(
    settings: Settings,
    count: int = 1,
    *,
    created: datetime,
    schedule: Mapping[str, Any] = DAILY_9,
    timezone: str = "America/New_York",
    **task_options: Any,
) -> tuple[int, list[int]]:
    """A user ``T`` in ``timezone`` with ``count`` tasks (``t``, or ``t0``, ``t1``...) on
    ``schedule``, created at ``created``: ``(user id, task ids)``."""

    async def go() -> tuple[int, list[int]]:
        async with AITaskManager(settings, clock=lambda: created) as manager:
            user = await manager.create_user("T", timezone=timezone)
            titles = ["t"] if count == 1 else [f"t{n}" for n in range(count)]
            tasks = [
                await manager.create_task(user.id, title, schedule=schedule, **task_options)
                for title in titles
            ]
            return user.id, [task.id for task in tasks]

    return asyncio.run(go())


async def queued_runs(settings: Settings, count: int, *, owner: str = "Ines") -> list[int]:
    """``count`` runs queued now ("run now") of as many one-off tasks due tomorrow, one user's."""
    async with AITaskManager(settings) as manager:
        user = await manager.create_user(owner)
        at = datetime.now(UTC) + timedelta(days=1)
        ids = []
        for n in range(count):
            task = await manager.create_task(
                user.id, f"Digest {n}", schedule={"kind": "once", "at": at.isoformat()}
            )
            ids.append((await manager.run_now(task.id, user.id)).id)
        return ids
