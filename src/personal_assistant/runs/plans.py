"""What a claim does to each due task, planned before its transaction (pure: no I/O).

A due task is planned from the ``next_run_at`` it was read with: the runs of its due firings
(after its catch-up policy), its next ``next_run_at``, whether it is finished or its stored
schedule broken. The plan (:class:`Plan`) is made once per distinct schedule, due instant and
catch-up policy of a batch and shared by the tasks that have them (:func:`plan_batch`); each
task's :class:`TaskPlan` names it. Under fair dispatch, the new runs beyond their owners'
shares are then held unpublished or, over the hourly quota, recorded skipped
(:func:`within_shares`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from personal_assistant.core.catchup import plan_due
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_kinds import Schedule
from personal_assistant.core.states import CatchUp
from personal_assistant.errors import ScheduleError
from personal_assistant.runs.fair_dispatch import (
    Limits,
    Owed,
    Tally,
    fits,
    over_hour_reason,
    share,
)

log = logging.getLogger(__name__)

#: A due task as read: ``(task_id, schedule as JSON text, next_run_at, catch_up, user_id)``.
Candidate = tuple[int, str, datetime, str, int]


class NewRun(NamedTuple):
    """A run a claim records (a tuple: a burst creates thousands a second)."""

    task_id: int
    scheduled_for: datetime
    run: bool  # False: recorded as skipped
    #: Queued but not published: it waits for its owner's share (``fair_dispatch``).
    held: bool = False
    #: Why it was skipped, when not by the catch-up policy (stored in ``error``).
    reason: str | None = None


class Plan(NamedTuple):
    """What a claim makes of a due instant of a schedule, under a catch-up policy: the same
    for every task that has them (a burst is thousands of "daily at 09:00", due at once)."""

    #: The due firings: ``(scheduled_for, run)``; ``run`` False: recorded as skipped.
    firings: tuple[tuple[datetime, bool], ...]
    next_run_at: datetime | None
    dropped: int
    finished: bool  # its last firings were all skipped: nothing will ever complete the task
    broken: str | None  # the stored schedule cannot be read: the task fails with this reason


class TaskPlan(NamedTuple):
    """What a claim does to one due task, planned before the claim's transaction."""

    task_id: int
    due_at: datetime  # the ``next_run_at`` planned from: the claim's compare-and-set
    plan: Plan

    @property
    def next_run_at(self) -> datetime | None:
        return self.plan.next_run_at

    @property
    def dropped(self) -> int:
        return self.plan.dropped

    @property
    def finished(self) -> bool:
        return self.plan.finished

    @property
    def broken(self) -> str | None:
        return self.plan.broken


def new_runs(plans: Sequence[TaskPlan]) -> list[NewRun]:
    """The runs of ``plans``, in order."""
    return [NewRun(p.task_id, at, run) for p in plans for at, run in p.plan.firings]


def plan_task(
    task_id: int,
    data: str,
    due_at: datetime,
    now: datetime,
    policy: str,
    *,
    grace: timedelta,
    limit: int,
) -> TaskPlan:
    """The plan for one due task."""
    try:
        schedule = parse_stored_schedule(data)
    except ScheduleError as exc:
        return TaskPlan(task_id, due_at, Plan((), None, 0, False, f"invalid schedule: {exc}"))
    plan = plan_due(schedule, due_at, now, CatchUp(policy).value, grace=grace, limit=limit)
    firings = tuple((f.scheduled_for, f.run) for f in plan.firings)
    finished = plan.next_run_at is None and not any(f.run for f in plan.firings)
    return TaskPlan(task_id, due_at, Plan(firings, plan.next_run_at, plan.dropped, finished, None))


def plan_batch(
    candidates: Sequence[Candidate],
    now: datetime,
    deadline: float,
    *,
    grace: timedelta,
    limit: int,
) -> list[TaskPlan]:
    """Plan each candidate's due firings, oldest first, until the monotonic ``deadline`` (at
    least one).

    A plan depends on the schedule, the due instant and the catch-up policy only, so it is
    made once per distinct ``(schedule, next_run_at, catch_up)`` of the batch and shared by
    the tasks that have them (a burst is typically thousands of "daily at 09:00" in a few
    zones, all due at the same instant).
    """
    plans: list[TaskPlan] = []
    shared: dict[tuple[str, datetime, str], Plan] = {}
    for task_id, data, due_at, catch_up, _ in candidates:
        key = (data, due_at, catch_up)
        known = shared.get(key)
        if known is not None:
            plans.append(TaskPlan(task_id, due_at, known))
            continue
        if plans and time.monotonic() > deadline:
            break
        planned = plan_task(
            task_id, data, due_at, now, CatchUp(catch_up).value, grace=grace, limit=limit
        )
        shared[key] = planned.plan
        plans.append(planned)
    return plans


def distinct_plans(candidates: Sequence[Candidate]) -> int:
    """How many plans :func:`plan_batch` makes for ``candidates``: one per distinct
    ``(schedule, next_run_at, catch_up)``."""
    return len({(data, due_at, catch_up) for _, data, due_at, catch_up, _ in candidates})


def within_shares(
    runs: list[NewRun], owners: Mapping[int, int], tally: Tally, limits: Limits
) -> list[NewRun]:
    """New runs within their owners' shares as they are; the others held or skipped.

    A firing beyond the hourly quota is recorded skipped with the reason; one beyond the
    cap waits unpublished (see :mod:`fair_dispatch`). Oldest firings first, per user.
    """
    counts = Counter([owners.get(r.task_id) for r in runs if r.run])
    if fits(counts, tally.usage(), limits):
        tally.send(counts)
        return runs
    owed = [Owed(i, owners.get(r.task_id)) for i, r in enumerate(runs) if r.run]
    shares = share(owed, tally.usage(), limits, at_claim=True)
    tally.keep(shares)
    if not shares.hold and not shares.skip:
        return runs
    held, skipped = set(shares.hold), set(shares.skip)
    reason = over_hour_reason(limits)
    for i in shares.skip:
        log.info(
            "event=run_skipped_over_quota task_id=%s scheduled_for=%s",
            runs[i].task_id,
            runs[i].scheduled_for.isoformat(),
        )
    return [
        r._replace(held=True)
        if i in held
        else r._replace(run=False, reason=reason)
        if i in skipped
        else r
        for i, r in enumerate(runs)
    ]


@lru_cache(maxsize=65_536)
def parse_stored_schedule(text: str) -> Schedule:
    """A stored schedule, parsed once per distinct text (many tasks share "daily at 09:00")."""
    return parse_schedule(json.loads(text))


def cast_due(value: datetime | None) -> datetime:
    """A claimed task's ``next_run_at``: never NULL, the claim asked for ``<= now``."""
    assert value is not None
    return value
