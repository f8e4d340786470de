"""Database operations on runs, shared by the worker and the reaper.

Every write here is a compare-and-set: a run is claimed only from ``queued``, and a result is
stored only by the claim that still owns the run (``state = 'running'`` and the same
``attempt``), so a second delivery or a worker the reaper gave up on changes nothing.

``attempt`` counts real tries: a claim adds one, and a run the rate limiter held back before
its agent was called (a deferral) takes that one back as it returns to the queue. Only the
owner of the claim does so, and the reaper never lowers it, so a claim that lost its run never
finds the same ``attempt`` running again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.agents.base import AgentRequest, PreviousResult
from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.core.states import NotificationStatus, RunState, TaskStatus
from personal_assistant.database.models import AITask, TaskRun, User
from personal_assistant.notifications import delivery as notification_service
from personal_assistant.runs.bulk import (
    NewNotification,
    Success,
    insert_notifications,
    store_successes,
)
from personal_assistant.runs.executor import Outcome
from personal_assistant.runs.outcomes import (
    after_deferral,
    after_failure,
    deferral_text,
    failure_text,
)

__all__ = ["ClaimedRun", "Outcome", "Recorded", "claim", "load_claimed", "reap_expired", "record"]

log = logging.getLogger(__name__)

PREVIOUS_RESULTS = 3


@dataclass(frozen=True)
class ClaimedRun:
    request: AgentRequest
    max_retries: int
    channels: tuple[str, ...]
    user_id: int


@dataclass(frozen=True)
class Recorded:
    succeeded: int
    retrying: int  # runs now ``retrying``: failed attempts to retry, and deferred runs
    failed: int
    stale: int
    pending_notifications: tuple[int, ...]
    deferred: int = 0  # of ``retrying``: held back by the rate limit, no attempt counted


async def claim(
    conn: AsyncConnection,
    run_ids: Sequence[int],
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
) -> list[ClaimedRun]:
    """Claim the queued runs among ``run_ids`` and load what the agent needs for them."""
    claimed = (
        (
            await conn.execute(
                update(TaskRun)
                .where(TaskRun.id.in_(list(run_ids)), TaskRun.state == RunState.QUEUED)
                .values(
                    state=RunState.RUNNING,
                    attempt=TaskRun.attempt + 1,
                    started_at=now,
                    worker_id=worker_id,
                    lease_expires_at=now + lease,
                )
                .returning(TaskRun.id)
            )
        )
        .scalars()
        .all()
    )
    if not claimed:
        return []
    return await load_claimed(conn, claimed, with_history=True)


async def _previous_results(
    conn: AsyncConnection, task_ids: Sequence[int]
) -> dict[int, list[PreviousResult]]:
    if not task_ids:
        return {}
    ranked = (
        select(
            TaskRun.task_id,
            TaskRun.scheduled_for,
            TaskRun.result,
            func.row_number()
            .over(partition_by=TaskRun.task_id, order_by=TaskRun.scheduled_for.desc())
            .label("rank"),
        )
        .where(TaskRun.task_id.in_(set(task_ids)), TaskRun.state == RunState.SUCCEEDED)
        .subquery()
    )
    rows = (
        await conn.execute(
            select(ranked.c.task_id, ranked.c.scheduled_for, ranked.c.result)
            .where(ranked.c.rank <= PREVIOUS_RESULTS)
            .order_by(ranked.c.task_id, ranked.c.scheduled_for.desc())
        )
    ).all()
    history: dict[int, list[PreviousResult]] = {}
    for row in rows:
        history.setdefault(row.task_id, []).append(
            PreviousResult(row.scheduled_for, row.result or "")
        )
    return history


async def record(
    conn: AsyncConnection,
    claimed: Sequence[ClaimedRun],
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    policy: RetryPolicy,
    pause_after: int,
    delivery_lease: timedelta = notification_service.DELIVERY_LEASE,
) -> Recorded:
    """Store the outcomes of attempts, in the caller's transaction.

    Only runs still owned by this attempt are written; the others are counted ``stale``.
    """
    by_run = {c.request.run_id: c for c in claimed}
    owned = {
        (run_id, attempt)
        for run_id, attempt in await conn.execute(
            select(TaskRun.id, TaskRun.attempt)
            .where(TaskRun.id.in_(list(by_run)), TaskRun.state == RunState.RUNNING)
            .with_for_update()
        )
    }
    successes: list[Success] = []
    retries: list[dict[str, Any]] = []
    deferrals: list[dict[str, Any]] = []
    failures: list[tuple[ClaimedRun, str]] = []
    stale = 0
    for outcome in outcomes:
        run = by_run[outcome.run_id]
        if (outcome.run_id, outcome.attempt) not in owned:
            stale += 1
            continue
        if outcome.deferred:
            deferrals.append(_deferral(outcome, run, now=now))
            continue
        if outcome.reply is not None:
            successes.append(
                Success(
                    run_id=outcome.run_id,
                    task_id=run.request.task_id,
                    scheduled_for=run.request.scheduled_for,
                    result=outcome.reply.text,
                    agent_name=outcome.agent_name,
                    model=outcome.reply.model,
                    prompt_tokens=outcome.reply.prompt_tokens,
                    completion_tokens=outcome.reply.completion_tokens,
                )
            )
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
    if retries:
        await conn.execute(
            update(TaskRun)
            .where(TaskRun.id == bindparam("b_id"))
            .values(
                state=RunState.RETRYING,
                lease_expires_at=bindparam("b_retry_at"),
                error=bindparam("b_error"),
                agent_name=bindparam("b_agent"),
            )
            .execution_options(synchronize_session=False),
            retries,
        )
    await _defer_runs(conn, deferrals)
    if failures:
        await fail_runs(conn, failures, now=now)

    await _update_tasks_after_failure(conn, failures, pause_after=pause_after)
    pending = await _write_notifications(
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
        pending,
        deferred=len(deferrals),
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


async def _defer_runs(conn: AsyncConnection, deferrals: Sequence[dict[str, Any]]) -> None:
    """Deferred runs wait for their retry time as ``retrying``, their claim's attempt taken
    back: the agent was never called. Their tasks are not touched (no failure to count)."""
    if not deferrals:
        return
    await conn.execute(
        update(TaskRun)
        .where(TaskRun.id == bindparam("b_id"))
        .values(
            state=RunState.RETRYING,
            attempt=TaskRun.attempt - 1,
            lease_expires_at=bindparam("b_retry_at"),
            error=bindparam("b_error"),
            agent_name=bindparam("b_agent"),
        )
        .execution_options(synchronize_session=False),
        deferrals,
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


async def _update_tasks_after_failure(
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


async def _write_notifications(
    conn: AsyncConnection,
    finished: Sequence[tuple[ClaimedRun, bool, str]],
    *,
    now: datetime,
    delivery_lease: timedelta,
) -> tuple[int, ...]:
    """The outbox rows of finished runs; pending ones wait ``delivery_lease`` for their message
    before the reaper's sweep sends them again."""
    notes = []
    for run, succeeded, text in finished:
        message = notification_service.compose(run.request.title, succeeded=succeeded, text=text)
        for channel in run.channels or (notification_service.IN_APP,):
            notes.append(
                NewNotification(
                    run_id=run.request.run_id,
                    task_id=run.request.task_id,
                    user_id=run.user_id,
                    channel=channel,
                    status=notification_service.initial_status(channel).value,
                    title=message.title,
                    body=message.body,
                )
            )
    inserted = await insert_notifications(conn, notes, now=now, sweep_at=now + delivery_lease)
    return tuple(i for i, status in inserted if status == NotificationStatus.PENDING)


async def reap_expired(
    conn: AsyncConnection,
    *,
    now: datetime,
    policy: RetryPolicy,
    pause_after: int,
    limit: int = 1000,
    delivery_lease: timedelta = notification_service.DELIVERY_LEASE,
) -> tuple[int, tuple[int, ...]]:
    """Runs whose worker vanished (running, lease expired): retry after the backoff of the
    lost attempt, as a failed attempt would (:func:`after_failure`), or fail if out of tries.

    Returns the number reaped and the notifications left pending for delivery.
    """
    rows = (
        await conn.execute(
            select(TaskRun.id, TaskRun.attempt, AITask.max_retries)
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(TaskRun.state == RunState.RUNNING, TaskRun.lease_expires_at <= now)
            .order_by(TaskRun.lease_expires_at)
            .limit(limit)
            .with_for_update(of=TaskRun.__table__, skip_locked=True)
        )
    ).all()
    if not rows:
        return 0, ()
    retry: list[dict[str, Any]] = []
    give_up = []
    for r in rows:
        decision = after_failure(
            attempt=r.attempt, max_retries=r.max_retries, permanent=False, now=now, policy=policy
        )
        log.warning(
            "event=run_reaped run_id=%s attempt=%s next=%s",
            r.id,
            r.attempt,
            decision.state.value,
        )
        if decision.state == RunState.RETRYING:
            retry.append(
                {
                    "b_id": r.id,
                    "b_retry_at": decision.retry_at,
                    "b_error": f"attempt {r.attempt} lost: the worker stopped before finishing it",
                }
            )
        else:
            give_up.append(r)
    if retry:
        await conn.execute(
            update(TaskRun)
            .where(TaskRun.id == bindparam("b_id"))
            .values(
                state=RunState.RETRYING,
                lease_expires_at=bindparam("b_retry_at"),
                worker_id=None,
                error=bindparam("b_error"),
            )
            .execution_options(synchronize_session=False),
            retry,
        )
    pending: tuple[int, ...] = ()
    if give_up:
        claimed = await load_claimed(conn, [r.id for r in give_up])
        failures = [
            (
                c,
                failure_text(
                    "the worker stopped before finishing it", c.request.attempt, final=True
                ),
            )
            for c in claimed
        ]
        await fail_runs(conn, failures, now=now)
        await _update_tasks_after_failure(conn, failures, pause_after=pause_after)
        pending = await _write_notifications(
            conn, [(c, False, t) for c, t in failures], now=now, delivery_lease=delivery_lease
        )
    return len(rows), pending


async def load_claimed(
    conn: AsyncConnection, run_ids: Sequence[int], *, with_history: bool = False
) -> list[ClaimedRun]:
    """What the agent and the bookkeeping need for each run: task, owner, recent results."""
    rows = (
        await conn.execute(
            select(
                TaskRun.id,
                TaskRun.task_id,
                TaskRun.scheduled_for,
                TaskRun.attempt,
                AITask.title,
                AITask.description,
                AITask.task_type,
                AITask.ai_context,
                AITask.max_retries,
                AITask.notification_channels,
                AITask.user_id,
                AITask.timezone,
                User.display_name,
            )
            .join(AITask, AITask.id == TaskRun.task_id)
            .join(User, User.id == AITask.user_id)
            .where(TaskRun.id.in_(list(run_ids)))
        )
    ).all()
    history = (
        await _previous_results(conn, [r.task_id for r in rows if r.task_type != "reminder"])
        if with_history
        else {}
    )
    return [
        ClaimedRun(
            request=AgentRequest(
                task_id=r.task_id,
                run_id=r.id,
                title=r.title,
                instruction=r.description,
                task_type=r.task_type,
                ai_context=dict(r.ai_context or {}),
                owner_name=r.display_name,
                timezone=r.timezone,
                scheduled_for=r.scheduled_for,
                local_time=r.scheduled_for.astimezone(ZoneInfo(r.timezone)),
                attempt=r.attempt,
                previous_results=tuple(history.get(r.task_id, ())),
                user_id=r.user_id,
            ),
            max_retries=r.max_retries,
            channels=tuple(r.notification_channels or ()),
            user_id=r.user_id,
        )
        for r in rows
    ]
