"""One timer for the timeouts of a group of tasks that start together.

A worker starts the runs of a claimed part together, one asyncio task each, and each must
answer within the agent timeout. ``asyncio.timeout`` around each call puts one timer per run
on the event loop's heap, reschedules it on entry and cancels it on exit: with the offline
agent it cost the end-to-end benchmark's worker about 6 µs of its 87 µs of CPU per run
(docs/performance.md). A :class:`SharedDeadline` is one timer for the group. When it fires,
it cancels each task of the group that is still running; such a task then asks
:meth:`SharedDeadline.expired` whether its cancellation is the deadline's alone. It is, unless
something else (a shutdown) cancelled the task too: ``asyncio.timeout`` decides it the same
way, by withdrawing its own cancellation request (``Task.uncancel``) and passing on any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["SharedDeadline"]

T = TypeVar("T")


class SharedDeadline:
    """``seconds`` from now (loop time) for every task started with :meth:`start`.

    Call :meth:`close` when the group is over: its timer is then taken off the loop.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._tasks: list[asyncio.Task[Any]] = []
        self._cancelled: set[asyncio.Task[Any]] = set()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire)

    def start(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task of the group."""
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        return task

    def expired(self) -> bool:
        """In a task of the group that caught ``CancelledError``: whether the deadline alone
        cancelled it. True withdraws the deadline's cancellation request (the task goes on and
        ends as it sees fit); False means the error is to be raised again."""
        task = asyncio.current_task()
        if task is None or task not in self._cancelled:
            return False
        self._cancelled.discard(task)
        return task.uncancel() == 0

    def close(self) -> None:
        """Take the timer off the loop (it fires no more)."""
        self._timer.cancel()
        self._tasks.clear()

    def _expire(self) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()
                self._cancelled.add(task)
        self._tasks.clear()
