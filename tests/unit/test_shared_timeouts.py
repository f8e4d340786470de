"""``asyncio.timeout`` with shared timers (``agents/timeouts.py``), as the executor's agent calls
and the agent's HTTP exchanges use it: the same answers as ``asyncio.timeout``, one timer per
slot of deadlines."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import pytest

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.agents.timeouts import SLOT_S, Deadlines
from personal_assistant.runs.executor import Outcome, TaskExecutor

WHEN = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def _sleep_within(deadlines: Deadlines, delay: float, sleep: float) -> str:
    async with deadlines.within(delay):
        await asyncio.sleep(sleep)
    return "answered"


def test_a_block_past_its_delay_times_out_never_before_it() -> None:
    async def go() -> float:
        deadlines = Deadlines()
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(TimeoutError):
            await _sleep_within(deadlines, 0.1, 5)
        return loop.time() - began

    took = asyncio.run(go())
    assert took >= 0.1 - 1e-3, took  # the loop's clock resolution at most


def test_blocks_in_time_are_untouched_and_share_their_timers() -> None:
    async def go() -> tuple[list[object], int, float]:
        deadlines = Deadlines()
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks = [asyncio.ensure_future(_sleep_within(deadlines, 30, 0.01)) for _ in range(200)]
        await asyncio.sleep(0)  # every block entered
        timers, span = len(deadlines), loop.time() - began
        return list(await asyncio.gather(*tasks)), timers, span

    results, timers, span = asyncio.run(go())
    assert results == ["answered"] * 200
    # Entered within ``span`` seconds, the 200 blocks' deadlines fall in that many slots and
    # one more at most (two, unless the machine stalled the loop while they entered).
    assert 1 <= timers <= math.ceil(span / SLOT_S) + 1, (timers, span)


def test_the_late_blocks_of_a_slot_time_out_and_the_others_answer() -> None:
    async def go() -> list[object]:
        deadlines = Deadlines()
        tasks = [
            asyncio.ensure_future(_sleep_within(deadlines, 0.1, 60 if i % 2 else 0))
            for i in range(10)
        ]
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(go())
    assert results[0::2] == ["answered"] * 5
    assert all(isinstance(late, TimeoutError) for late in results[1::2]), results


def test_a_cancellation_from_elsewhere_is_passed_on() -> None:
    async def go() -> None:
        deadlines = Deadlines()
        task = asyncio.ensure_future(_sleep_within(deadlines, 30, 60))
        await asyncio.sleep(0.01)
        task.cancel()  # a shutdown, long before the deadline
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())


class _ShutdownAtTheDeadline(Deadlines):
    """A shutdown that cancels ``victim`` in the same instant as its slot fires, before the
    task resumes."""

    victim: asyncio.Task[str]

    def _expire(self, slot: int) -> None:
        super()._expire(slot)
        self.victim.cancel()


def test_a_cancellation_from_elsewhere_as_the_slot_fires_is_passed_on() -> None:
    """Cancelled by its slot and by a shutdown at once, a block must end cancelled, not timed
    out (``asyncio.timeout`` decides it the same way)."""

    async def go() -> None:
        deadlines = _ShutdownAtTheDeadline()
        deadlines.victim = asyncio.ensure_future(_sleep_within(deadlines, 0.05, 60))
        with pytest.raises(asyncio.CancelledError):
            await deadlines.victim

    asyncio.run(go())


class _Sleepy:
    """An agent that answers each run after the seconds its ``ai_context`` names."""

    name = "sleepy"

    async def complete(self, req: AgentRequest) -> AgentReply:
        await asyncio.sleep(float(req.ai_context["seconds"]))
        return AgentReply(text=f"done {req.run_id}", model="m")

    async def aclose(self) -> None:
        return None


def _request(run_id: int, seconds: float) -> AgentRequest:
    return AgentRequest(
        task_id=1,
        run_id=run_id,
        title="t",
        instruction="",
        task_type="reminder",
        ai_context={"seconds": seconds},
        owner_name="Ada",
        timezone="UTC",
        scheduled_for=WHEN,
        local_time=WHEN,
        attempt=1,
    )


def test_a_part_of_runs_started_together_the_late_ones_time_out() -> None:
    """The executor's agent calls: each run's outcome is its own, on one event loop after
    another (each ``asyncio.run`` a new one)."""
    executor = TaskExecutor(_Sleepy(), timeout=0.2)

    async def part() -> list[Outcome]:
        runs = [_request(i, 60 if i % 3 == 0 else 0) for i in range(1, 31)]
        return list(await asyncio.gather(*(executor.execute(run) for run in runs)))

    for _ in range(2):
        outcomes = asyncio.run(part())
        for run_id, outcome in enumerate(outcomes, start=1):
            assert outcome.run_id == run_id
            if run_id % 3:
                assert outcome.reply is not None and outcome.reply.text == f"done {run_id}"
            else:
                assert outcome.timed_out, outcome
                assert outcome.error == "the agent did not answer within 0.2 s"
