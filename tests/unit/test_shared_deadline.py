"""One timer for the timeouts of a part's runs (``runs/deadline.py``) and the executor's use of it.

The runs of a part start together, and share one deadline: the attempts still running when it
passes end as timed out, each with its own outcome, and the others are untouched. A
cancellation that comes from elsewhere (a worker shutting down) is never turned into a timeout.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.runs.deadline import SharedDeadline
from personal_assistant.runs.executor import Outcome, TaskExecutor

WHEN = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class _Sleepy:
    """An agent that answers each run after the seconds its ``ai_context`` names."""

    name = "sleepy"

    async def complete(self, req: AgentRequest) -> AgentReply:
        await asyncio.sleep(float(req.ai_context["seconds"]))
        return AgentReply(text=f"done {req.run_id}", model="m")

    async def aclose(self) -> None:
        return None


def _run(run_id: int, seconds: float) -> AgentRequest:
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


async def _attempts(deadline_s: float, *runs: AgentRequest) -> list[Outcome]:
    executor = TaskExecutor(_Sleepy(), timeout=deadline_s)  # type: ignore[arg-type]
    deadline = SharedDeadline(executor.timeout)
    try:
        tasks = [deadline.start(executor.execute(run, deadline)) for run in runs]
        return list(await asyncio.gather(*tasks))
    finally:
        deadline.close()


def test_attempts_past_the_shared_deadline_time_out_and_the_others_answer() -> None:
    fast, slow, slower = asyncio.run(_attempts(0.2, _run(1, 0), _run(2, 5), _run(3, 60)))

    assert fast.ok and fast.reply is not None and fast.reply.text == "done 1"
    for late, run_id in ((slow, 2), (slower, 3)):
        assert late.run_id == run_id and not late.ok and late.timed_out
        assert late.error == "the agent did not answer within 0.2 s"
        assert 0.2 <= late.seconds < 5


def test_a_cancellation_from_elsewhere_is_passed_on_not_turned_into_a_timeout() -> None:
    async def go() -> None:
        executor = TaskExecutor(_Sleepy(), timeout=30)  # type: ignore[arg-type]
        deadline = SharedDeadline(executor.timeout)
        try:
            task = deadline.start(executor.execute(_run(1, 60), deadline))
            await asyncio.sleep(0.01)  # the attempt waits for its answer
            task.cancel()  # the worker stops, long before the deadline
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            deadline.close()

    asyncio.run(go())


def test_a_cancellation_from_elsewhere_at_the_deadline_is_passed_on_too() -> None:
    """The deadline cancels both tasks at once. The first, on its way out, cancels the second
    as a shutdown would, before the second sees its own cancellation: that one must end
    cancelled, not timed out (``asyncio.timeout`` decides it the same way)."""
    seen: list[str] = []

    async def first(deadline: SharedDeadline, other: list[asyncio.Task[Any]]) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            if not deadline.expired():
                raise
            other[0].cancel()
            return "timed out"
        return "answered"

    async def second(deadline: SharedDeadline) -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("expired" if deadline.expired() else "cancelled from elsewhere")
            raise
        return "answered"

    async def go() -> tuple[str, BaseException | str]:
        deadline = SharedDeadline(0.05)
        other: list[asyncio.Task[Any]] = []
        a = deadline.start(first(deadline, other))
        other.append(deadline.start(second(deadline)))
        try:
            done = await asyncio.gather(a, other[0], return_exceptions=True)
        finally:
            deadline.close()
        return done[0], done[1]

    first_result, second_result = asyncio.run(go())

    assert first_result == "timed out"
    assert isinstance(second_result, asyncio.CancelledError)
    assert seen == ["cancelled from elsewhere"]


def test_a_closed_deadline_cancels_nothing() -> None:
    async def go() -> list[str]:
        deadline = SharedDeadline(0.02)
        task = deadline.start(asyncio.sleep(0.1, result="answered"))
        deadline.close()
        return [await task]

    assert asyncio.run(go()) == ["answered"]


def test_a_task_outside_the_group_is_never_told_it_expired() -> None:
    async def go() -> bool:
        deadline = SharedDeadline(0.01)
        await asyncio.sleep(0.05)  # the deadline has passed, with nothing in its group
        try:
            return deadline.expired()
        finally:
            deadline.close()

    assert asyncio.run(go()) is False
