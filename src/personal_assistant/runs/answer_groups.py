"""The answers of a part's runs, handed out in groups as they come.

A part's runs answer when their model does: together (the offline agent, a server that answers
after a fixed delay) or spread over seconds (a real model). Each group of answers is written in
one statement, so the answers that come within ``wait_s`` of the first of a group join it
(:data:`~personal_assistant.runs.processor.GROUP_WAIT_S`), unless every run has answered before.

Each run's future gets one done-callback, which files its answer. Following the part with
``asyncio.wait`` instead passed over every still-running future twice per group, adding and
removing a callback on each (68 us over 100 futures): when answers come one by one, quadratic
in the part, about 0.13 ms of the event loop's CPU per run of a part of 100.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from functools import partial
from typing import Any


class AnswerGroups:
    """``async for group in AnswerGroups(futures, wait_s=...)``: the indexes of the futures
    that are done, a group at a time, each group in the futures' order, until all were handed
    out. A group is handed out ``wait_s`` after its first answer, or as soon as every future is
    done."""

    def __init__(self, futures: Sequence[asyncio.Future[Any]], *, wait_s: float) -> None:
        self._wait_s = wait_s
        self._running = len(futures)
        self._answered: list[int] = []
        self._arrived = asyncio.Event()
        self._all_done = asyncio.Event()
        if not futures:
            self._all_done.set()
        for index, future in enumerate(futures):
            future.add_done_callback(partial(self._file, index))

    def _file(self, index: int, _: asyncio.Future[Any]) -> None:
        self._answered.append(index)
        self._running -= 1
        self._arrived.set()
        if not self._running:
            self._all_done.set()

    def __aiter__(self) -> AnswerGroups:
        return self

    async def __anext__(self) -> list[int]:
        if not self._answered and not self._running:
            raise StopAsyncIteration
        await self._arrived.wait()
        if self._running:  # let the answers close behind the first join its group
            with suppress(TimeoutError):
                async with asyncio.timeout(self._wait_s):
                    await self._all_done.wait()
        group, self._answered = self._answered, []
        self._arrived.clear()
        group.sort()
        return group
