"""``plan_batch`` plans once per distinct schedule, due instant and catch-up policy: the tasks
that share them get the same plan, each under its own id, and a different one gets its own."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from personal_assistant.runs.plans import (
    Candidate,
    TaskPlan,
    distinct_plans,
    new_runs,
    plan_batch,
    plan_task,
)

NOW = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)
DAILY_9 = json.dumps({"kind": "daily", "times": ["09:00"], "timezone": "UTC"})
DAILY_10 = json.dumps({"kind": "daily", "times": ["10:00"], "timezone": "UTC"})
DUE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATE = datetime(2026, 2, 27, 9, 0, tzinfo=UTC)  # three days of firings missed
GRACE = timedelta(minutes=5)


def _plan(candidates: list[Candidate]) -> list[TaskPlan]:
    return plan_batch(candidates, NOW, time.monotonic() + 60, grace=GRACE, limit=100)


def test_tasks_sharing_a_schedule_and_due_instant_share_one_plan_under_their_own_ids() -> None:
    candidates = [(task_id, DAILY_9, DUE, "once", 1) for task_id in range(1, 501)]
    plans = _plan(candidates)
    assert distinct_plans(candidates) == 1
    assert [p.task_id for p in plans] == list(range(1, 501))
    for plan in plans:
        expected = plan_task(plan.task_id, DAILY_9, DUE, NOW, "once", grace=GRACE, limit=100)
        assert plan == expected
        assert all(run.task_id == plan.task_id for run in new_runs([plan]))


def test_a_different_schedule_due_instant_or_policy_is_planned_on_its_own() -> None:
    candidates = [
        (1, DAILY_9, DUE, "once", 1),
        (2, DAILY_9, LATE, "once", 1),
        (3, DAILY_9, LATE, "all", 1),
        (4, DAILY_10, LATE, "all", 2),
        (5, DAILY_9, LATE, "all", 2),
    ]
    plans = _plan(candidates)
    assert distinct_plans(candidates) == 4
    for plan, (task_id, data, due_at, policy, _) in zip(plans, candidates, strict=True):
        assert plan == plan_task(task_id, data, due_at, NOW, policy, grace=GRACE, limit=100)
    # "once": the latest firing runs, the rest skip
    assert sum(r.run for r in new_runs([plans[1]])) == 1
    assert sum(r.run for r in new_runs([plans[2]])) == 4  # "all": every missed firing runs
    assert new_runs([plans[2]]) != new_runs([plans[3]])
