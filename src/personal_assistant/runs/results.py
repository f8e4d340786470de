"""The outcomes of attempts stored, in the worker's transaction.

A result is stored only by the claim that still owns the run (``state = 'running'`` and the
same ``attempt``), so a second delivery or a worker the reaper gave up on changes nothing: its
outcomes are counted stale. A success ends the run and resets its task's failure count; a
failure retries after the backoff (:mod:`outcomes`) or ends the run ``failed``, counted on its
task (which may complete, fail or pause); a finished run writes its notification rows.

``attempt`` counts real tries: a claim adds one, and a run the rate limiter held back before
its agent was called (a deferral) takes that one back as it returns to the queue. Only the
owner of the claim does so, and the reaper never lowers it, so a claim that lost its run never
finds the same ``attempt`` running again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.agents.base import AgentReply
from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.core.states import NotificationStatus, RunState, TaskStatus
from personal_assistant.database.dialect import id_in, unindexed
from personal_assistant.database.models import AITask, TaskRun
from personal_assistant.notifications.channels import IN_APP
from personal_assistant.notifications.content import compose
from personal_assistant.notifications.outbox import (
    DELIVERY_LEASE,
    NewNotification,
    insert_notifications,
)
from personal_assistant.runs.bulk import (
    Success,
    store_successes,
)
from personal_assistant.runs.claims import ClaimedRun
from personal_assistant.runs.executor import Outcome
from personal_assistant.runs.outcomes import (
    after_deferral,
    after_failure,
    deferral_text,
    failure_text,
)
from personal_assistant.runs.success_write import store_successes_at_once

__all__ = [
    "Recorded",
    "Written",
    "fail_runs",
    "in_one_statement",
    "notifications_of",
    "record",
    "retry_runs",
    "update_tasks_after_failure",
    "write_notifications",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    """Outbox rows written: those left to send, and how many were delivered as written (the
    in-app inbox's)."""

    pending: tuple[int, ...]
    delivered: int


@dataclass(frozen=True)
class Recorded:
    succeeded: int
    retrying: int  # runs now ``retrying``: failed attempts to retry, and deferred runs
    failed: int
    stale: int
    pending_notifications: tuple[int, ...]
    deferred: int = 0  # of ``retrying``: held back by the rate limit, no attempt counted
    #: Each run's outcome as the metrics name it: succeeded, retrying, failed, stale, deferred.
    outcomes: dict[int, str] = field(default_factory=dict)
    #: Notifications delivered as written (in-app).
    delivered: int = 0


async def record(
    conn: AsyncConnection,
    claimed: Sequence[ClaimedRun],
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    policy: RetryPolicy,
    pause_after: int,
    delivery_lease: timedelta = DELIVERY_LEASE,
) -> Recorded:
    """Store the outcomes of attempts, in the caller's transaction.

    Only runs still owned by this attempt are written; the others are counted ``stale``. When
    :func:`in_one_statement` says so, that is one statement, which needs no transaction.
    """
    by_run = {c.request.run_id: c for c in claimed}
    if in_one_statement(conn.dialect.name, outcomes):
        return await _record_answers(conn, by_run, outcomes, now=now, sweep_at=now + delivery_lease)
    owned = {
        (run_id, attempt)
        for run_id, attempt in await conn.execute(
            select(TaskRun.id, TaskRun.attempt)
            .where(id_in(conn, TaskRun.id, by_run), unindexed(TaskRun.state == RunState.RUNNING))
            .with_for_update()
        )
    }
    successes: list[Success] = []
    retries: list[dict[str, Any]] = []
    deferrals: list[dict[str, Any]] = []
    failures: list[tuple[ClaimedRun, str]] = []
    stale = 0
    named: dict[int, str] = {}
    for outcome in outcomes:
        run = by_run[outcome.run_id]
        if (outcome.run_id, outcome.attempt) not in owned:
            stale += 1
            named[outcome.run_id] = "stale"
            continue
        if outcome.deferred:
            deferrals.append(_deferral(outcome, run, now=now))
            named[outcome.run_id] = "deferred"
            continue
        if outcome.reply is not None:
            named[outcome.run_id] = "succeeded"
            successes.append(_success(outcome, outcome.reply, run))
            continue
        error = outcome.error or "unknown error"
        decision = after_failure(
            attempt=outcome.attempt,
            max_retries=run.max_retries,
            permanent=outcome.permanent,
            now=now,
            policy=policy,
        )
        log.warning(
            "event=run_attempt_failed run_id=%s task_id=%s attempt=%s next=%s error=%r",
            outcome.run_id,
            run.request.task_id,
            outcome.attempt,
            decision.state.value,
            error,
        )
        named[outcome.run_id] = "retrying" if decision.state == RunState.RETRYING else "failed"
        if decision.state == RunState.RETRYING:
            retries.append(
                {
                    "b_id": outcome.run_id,
                    "b_retry_at": decision.retry_at,
                    "b_error": failure_text(error, outcome.attempt, final=False),
                    "b_agent": outcome.agent_name,
                }
            )
        else:
            failures.append((run, failure_text(error, outcome.attempt, final=True)))

    await store_successes(conn, successes, now=now)
    await retry_runs(conn, retries, agent_name=bindparam("b_agent"))
    # Deferred runs: their claim's attempt taken back, the agent was never called. Their
    # tasks are not touched (no failure to count).
    await retry_runs(conn, deferrals, attempt=TaskRun.attempt - 1, agent_name=bindparam("b_agent"))
    if failures:
        await fail_runs(conn, failures, now=now)

    await update_tasks_after_failure(conn, failures, pause_after=pause_after)
    written = await write_notifications(
        conn,
        [(by_run[s.run_id], True, s.result) for s in successes]
        + [(run, False, text) for run, text in failures],
        now=now,
        delivery_lease=delivery_lease,
    )
    return Recorded(
        len(successes),
        len(retries) + len(deferrals),
        len(failures),
        stale,
        written.pending,
        deferred=len(deferrals),
        outcomes=named,
        delivered=written.delivered,
    )


def in_one_statement(dialect: str, outcomes: Sequence[Outcome]) -> bool:
    """Whether :func:`record` stores ``outcomes`` in one statement, atomic on its own: on
    PostgreSQL, when every outcome is an answer (:mod:`.success_write`)."""
    return dialect == "postgresql" and bool(outcomes) and all(o.ok for o in outcomes)


async def _record_answers(
    conn: AsyncConnection,
    by_run: dict[int, ClaimedRun],
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    sweep_at: datetime,
) -> Recorded:
    answered = [(o, o.reply) for o in outcomes if o.reply is not None]
    successes = [(_success(o, reply, by_run[o.run_id]), o.attempt) for o, reply in answered]
    notes = notifications_of([(by_run[s.run_id], True, s.result) for s, _ in successes])
    stored = await store_successes_at_once(conn, successes, notes, now=now, sweep_at=sweep_at)
    written = _written(stored.notifications)
    named = {o.run_id: "succeeded" if o.run_id in stored.run_ids else "stale" for o in outcomes}
    return Recorded(
        len(stored.run_ids),
        0,
        0,
        len(outcomes) - len(stored.run_ids),
        written.pending,
        outcomes=named,
        delivered=written.delivered,
    )


def _success(outcome: Outcome, reply: AgentReply, run: ClaimedRun) -> Success:
    return Success(
        run_id=outcome.run_id,
        task_id=run.request.task_id,
        scheduled_for=run.request.scheduled_for,
        result=reply.text,
        agent_name=outcome.agent_name,
        model=reply.model,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
    )


def _deferral(outcome: Outcome, run: ClaimedRun, *, now: datetime) -> dict[str, Any]:
    """The parameters that send a deferred run back to the queue (no attempt, no failure)."""
    retry_at = after_deferral(wait=outcome.defer_seconds or 0.0, now=now)
    reason = outcome.error or "rate limited"
    log.info(
        "event=run_deferred run_id=%s task_id=%s retry_at=%s reason=%r",
        outcome.run_id,
        run.request.task_id,
        retry_at.isoformat(),
        reason,
    )
    return {
        "b_id": outcome.run_id,
        "b_retry_at": retry_at,
        "b_error": deferral_text(reason),
        "b_agent": outcome.agent_name,
    }


async def retry_runs(
    conn: AsyncConnection, retries: Sequence[dict[str, Any]], **values: Any
) -> None:
    """Runs back to ``retrying`` until their ``b_retry_at``, with their ``b_error``, one
    parameter set per run (``b_id``); ``values``: the other columns to set."""
    if not retries:
        return
    await conn.execute(
        update(TaskRun)
        .where(TaskRun.id == bindparam("b_id"))
        .values(
            state=RunState.RETRYING,
            lease_expires_at=bindparam("b_retry_at"),
            error=bindparam("b_error"),
            **values,
        )
        .execution_options(synchronize_session=False),
        retries,
    )


async def fail_runs(
    conn: AsyncConnection, failures: Sequence[tuple[ClaimedRun, str]], *, now: datetime
) -> None:
    await conn.execute(
        update(TaskRun)
        .where(TaskRun.id == bindparam("b_id"))
        .values(
            state=RunState.FAILED,
            finished_at=now,
            lease_expires_at=None,
            error=bindparam("b_error"),
        )
        .execution_options(synchronize_session=False),
        [{"b_id": run.request.run_id, "b_error": text} for run, text in failures],
    )


async def update_tasks_after_failure(
    conn: AsyncConnection, failures: Sequence[tuple[ClaimedRun, str]], *, pause_after: int
) -> None:
    if not failures:
        return
    one_shot_done = and_(AITask.status == TaskStatus.ACTIVE, AITask.next_run_at.is_(None))
    too_many = and_(
        AITask.status == TaskStatus.ACTIVE, AITask.consecutive_failures + 1 >= pause_after
    )
    await conn.execute(
        update(AITask)
        .where(AITask.id == bindparam("b_id"))
        .values(
            last_run_at=bindparam("b_at"),
            consecutive_failures=AITask.consecutive_failures + 1,
            status=case(
                (one_shot_done, TaskStatus.FAILED),
                (too_many, TaskStatus.PAUSED),
                else_=AITask.status,
            ),
            status_reason=case(
                (one_shot_done, bindparam("b_final_reason")),
                (too_many, bindparam("b_pause_reason")),
                else_=AITask.status_reason,
            ),
        )
        .execution_options(synchronize_session=False),
        [
            {
                "b_id": run.request.task_id,
                "b_at": run.request.scheduled_for,
                "b_final_reason": f"its run {text}",
                "b_pause_reason": (
                    f"paused after {pause_after} consecutive failed runs; last: {text}"
                ),
            }
            for run, text in failures
        ],
    )


async def write_notifications(
    conn: AsyncConnection,
    finished: Sequence[tuple[ClaimedRun, bool, str]],
    *,
    now: datetime,
    delivery_lease: timedelta,
) -> Written:
    """The outbox rows of finished runs; pending ones wait ``delivery_lease`` for their message
    before the reaper's sweep sends them again."""
    notes = notifications_of(finished)
    inserted = await insert_notifications(conn, notes, now=now, sweep_at=now + delivery_lease)
    return _written(inserted)


def notifications_of(finished: Sequence[tuple[ClaimedRun, bool, str]]) -> list[NewNotification]:
    """The outbox rows of finished runs ``(run, succeeded, text)``: one per channel."""
    notes = []
    for run, succeeded, text in finished:
        message = compose(run.request.title, succeeded=succeeded, text=text)
        for channel in run.channels or (IN_APP,):
            notes.append(
                NewNotification(
                    run_id=run.request.run_id,
                    task_id=run.request.task_id,
                    user_id=run.user_id,
                    channel=channel,
                    title=message.title,
                    body=message.body,
                )
            )
    return notes


def _written(inserted: Sequence[tuple[int, str]]) -> Written:
    return Written(
        tuple(i for i, status in inserted if status == NotificationStatus.PENDING),
        sum(1 for _, status in inserted if status == NotificationStatus.DELIVERED),
    )
