"""``asyncio.timeout`` with shared timers: the blocks of one event loop whose deadlines fall in
the same :data:`SLOT_S` share one timer.

The worker bounds every agent call (``RUN_TIMEOUT``, :mod:`~personal_assistant.runs.executor`)
and every HTTP exchange of the OpenAI-compatible agent (``AGENT_TIMEOUT``,
:mod:`~personal_assistant.agents.chat_http`). Each ``asyncio.timeout`` block schedules a timer
when it is entered and cancels it when it is left; on uvloop, the worker's loop, that is a
libuv timer created, started, stopped and closed for every block. At 2,000 agent calls in
flight (``benchmarks/latency_bound.py``) the HTTP exchanges' timeouts cost the worker about
13 % of its CPU (0.215 ms per run with them, 0.187 without), and end to end with the offline
agent the calls' timeouts about 5 %. Here a block joins the slot its deadline rounds up to,
and a slot has one timer, kept even when its blocks have all left (it then fires and finds
nothing to do): one timer per 50 ms at most, however many blocks. When the timer fires, it
cancels each task still inside a block of the slot; the block turns that cancellation into
``TimeoutError`` exactly as ``asyncio.timeout`` does: unless the task was also cancelled from
elsewhere (a shutdown), whose ``CancelledError`` then goes on.

The price: a block times out up to :data:`SLOT_S` after its delay, never before it.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

__all__ = ["SLOT_S", "Deadlines"]

#: The width of a slot: how late at most a block times out.
SLOT_S = 0.05


class Deadlines:
    """The shared timers of one event loop (the running one when it is made)."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._slots: dict[int, set[_Within]] = {}

    def within(self, delay: float) -> _Within:
        """``async with deadlines.within(delay):``, as ``async with asyncio.timeout(delay):``."""
        return _Within(self, delay)

    def running_here(self) -> bool:
        """Whether these timers belong to the running loop."""
        return self._loop is asyncio.get_running_loop()

    def __len__(self) -> int:
        """Timers pending."""
        return len(self._slots)

    def _join(self, block: _Within, delay: float) -> set[_Within]:
        slot = math.ceil((self._loop.time() + delay) / SLOT_S)
        blocks = self._slots.get(slot)
        if blocks is None:
            blocks = self._slots[slot] = set()
            self._loop.call_at(slot * SLOT_S, self._expire, slot)
        blocks.add(block)
        return blocks

    def _expire(self, slot: int) -> None:
        for block in self._slots.pop(slot, ()):
            block.expire()


class _Within:
    __slots__ = ("_blocks", "_cancelling", "_deadlines", "_delay", "_expired", "_task")

    def __init__(self, deadlines: Deadlines, delay: float) -> None:
        self._deadlines = deadlines
        self._delay = delay
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.within() is used inside a task only")
        self._task = task
        self._cancelling = task.cancelling()
        self._blocks = self._deadlines._join(self, self._delay)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._expired:
            self._blocks.discard(self)
            return
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def expire(self) -> None:
        self._expired = True
        self._task.cancel()
