"""What one CLI command runs on: the settings (built on first use) and one manager per command.

:func:`run` checks the schema, opens an :class:`AITaskManager`, awaits the command's coroutine
in a single ``asyncio.run`` and closes the manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from typing import TypeAlias, TypeVar

from personal_assistant.cli.schema import require_schema
from personal_assistant.config import Settings
from personal_assistant.tasks.manager import AITaskManager

T = TypeVar("T")

#: What a command awaits: a coroutine function of the manager.
Work: TypeAlias = Callable[[AITaskManager], Awaitable[T]]


@cache
def settings() -> Settings:
    """The settings, read from the environment on first use (never at import)."""
    return Settings.from_env()


def now() -> datetime:
    return datetime.now(UTC)


def run(work: Work[T]) -> T:
    """Await ``work(manager)`` after checking that the schema is current."""
    current = settings()
    require_schema(current.database_url)

    async def main() -> T:
        manager = AITaskManager(current)
        try:
            return await work(manager)
        finally:
            await manager.close()

    return asyncio.run(main())
