"""Catch-up planning after downtime: policies, the fast path, grace and bounds."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_assistant.core.catchup import CatchUpPlan, CatchUpPolicy, Firing, plan_due
from personal_assistant.core.next_run import next_after
from personal_assistant.core.schedule_kinds import Cron, Daily, Interval, Schedule

HOURLY = Interval(every=timedelta(hours=1), start=datetime(2026, 5, 1, tzinfo=UTC))
DAILY = Daily(times=(time(9),))


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=UTC)


def runs(plan: CatchUpPlan) -> list[int]:
    return [f.scheduled_for.hour for f in plan.firings if f.run]


def skips(plan: CatchUpPlan) -> list[int]:
    return [f.scheduled_for.hour for f in plan.firings if not f.run]


# --- the fast path: one due firing ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["skip", "once", "all"])
def test_single_on_time_firing_runs(policy: CatchUpPolicy) -> None:
    now = at(9) + timedelta(seconds=3)
    plan = plan_due(DAILY, at(9), now, policy, grace=timedelta(minutes=1), limit=5)
    assert plan == CatchUpPlan((Firing(at(9), True),), at(9, day=2), 0)


@pytest.mark.parametrize(
    ("policy", "grace", "run"),
    [
        ("skip", timedelta(hours=1), False),  # missed: 11 h late, grace 1 h
        ("once", timedelta(hours=1), True),
        ("all", timedelta(hours=1), True),
        ("skip", timedelta(hours=12), True),  # late but within grace
        ("skip", timedelta(hours=11), True),  # exactly at the edge of grace: on time
    ],
)
def test_single_late_firing(policy: CatchUpPolicy, grace: timedelta, run: bool) -> None:
    plan = plan_due(DAILY, at(9), at(20), policy, grace=grace, limit=5)
    assert plan == CatchUpPlan((Firing(at(9), run),), at(9, day=2), 0)


def test_single_firing_of_an_ended_schedule() -> None:
    once = Daily(times=(time(9),), end=at(9))
    plan = plan_due(once, at(9), at(9, 1), "all", grace=timedelta(minutes=5), limit=5)
    assert plan == CatchUpPlan((Firing(at(9), True),), None, 0)


def test_not_yet_due() -> None:
    plan = plan_due(DAILY, at(9), at(8), "all", grace=timedelta(0), limit=5)
    assert plan == CatchUpPlan((), at(9), 0)


# --- several due firings -------------------------------------------------------------------------
# HOURLY due at 00:00, now 05:30: due firings 00, 01, 02, 03, 04, 05.


@pytest.mark.parametrize(
    ("policy", "grace", "limit", "expected_skips", "expected_runs", "dropped"),
    [
        ("skip", timedelta(minutes=45), 10, [0, 1, 2, 3, 4], [5], 0),
        ("once", timedelta(minutes=45), 10, [0, 1, 2, 3, 4], [5], 0),
        ("all", timedelta(minutes=45), 10, [], [0, 1, 2, 3, 4, 5], 0),
        ("all", timedelta(minutes=45), 4, [0, 1], [2, 3, 4, 5], 0),
        ("all", timedelta(minutes=45), 2, [2, 3], [4, 5], 2),
        ("skip", timedelta(minutes=45), 2, [3, 4], [5], 3),
        ("once", timedelta(minutes=45), 2, [3, 4], [5], 3),
        ("once", timedelta(minutes=45), 1, [4], [5], 4),
        ("skip", timedelta(hours=3), 10, [0, 1, 2], [3, 4, 5], 0),  # cutoff 02:30
        ("skip", timedelta(hours=3), 2, [2, 3], [4, 5], 2),  # at most 2 runs
        ("skip", timedelta(hours=3, minutes=30), 10, [0, 1], [2, 3, 4, 5], 0),  # 02:00 at the edge
        ("skip", timedelta(0), 10, [0, 1, 2, 3, 4, 5], [], 0),  # even 05:00 is missed
        ("once", timedelta(0), 10, [0, 1, 2, 3, 4], [5], 0),  # the latest runs anyway
        ("all", timedelta(0), 3, [0, 1, 2], [3, 4, 5], 0),
    ],
)
def test_policies(
    policy: CatchUpPolicy,
    grace: timedelta,
    limit: int,
    expected_skips: list[int],
    expected_runs: list[int],
    dropped: int,
) -> None:
    plan = plan_due(HOURLY, at(0), at(5, 30), policy, grace=grace, limit=limit)
    assert skips(plan) == expected_skips
    assert runs(plan) == expected_runs
    assert plan.dropped == dropped
    assert plan.next_run_at == at(6)
    times = [f.scheduled_for for f in plan.firings]
    assert times == sorted(times)  # oldest first, skipped ones before runs


def test_now_on_a_firing_includes_it() -> None:
    plan = plan_due(HOURLY, at(0), at(5), "all", grace=timedelta(0), limit=10)
    assert runs(plan) == [0, 1, 2, 3, 4, 5]
    assert plan.next_run_at == at(6)


def test_schedule_ending_during_downtime() -> None:
    ending = Interval(every=timedelta(hours=1), start=at(0), end=at(3))
    plan = plan_due(ending, at(0), at(5, 30), "all", grace=timedelta(0), limit=10)
    assert runs(plan) == [0, 1, 2, 3]
    assert plan.next_run_at is None


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        plan_due(HOURLY, at(0), at(5), "all", grace=timedelta(0), limit=0)
    with pytest.raises(ValueError):
        plan_due(HOURLY, at(0), at(5), "all", grace=timedelta(seconds=-1), limit=1)
    with pytest.raises(ValueError):
        plan_due(HOURLY, at(0), at(5), "most", grace=timedelta(0), limit=1)  # type: ignore[arg-type]  # the point


# --- bounds --------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["skip", "once", "all"])
def test_minute_task_down_for_a_year_is_cheap_and_bounded(policy: CatchUpPolicy) -> None:
    every_minute = Cron(expression="* * * * *")
    due_at = datetime(2025, 5, 1, tzinfo=UTC)
    now = datetime(2026, 5, 1, 0, 0, 30, tzinfo=UTC)
    started = clock.perf_counter()
    plan = plan_due(every_minute, due_at, now, policy, grace=timedelta(minutes=5), limit=10)
    assert clock.perf_counter() - started < 0.5
    run_count = sum(f.run for f in plan.firings)
    assert run_count == {"skip": 5, "once": 1, "all": 10}[policy]
    assert len(plan.firings) - run_count == 10  # skipped records, bounded by limit
    assert plan.firings[-1] == Firing(datetime(2026, 5, 1, tzinfo=UTC), True)
    assert plan.next_run_at == datetime(2026, 5, 1, 0, 1, tzinfo=UTC)
    # evenly spaced firings: the estimate of the dropped ones is exact
    assert len(plan.firings) + plan.dropped == 365 * 24 * 60 + 1
    times = [f.scheduled_for for f in plan.firings]
    assert times == sorted(times)
    assert times[0] == datetime(2026, 5, 1, tzinfo=UTC) - timedelta(minutes=len(times) - 1)


def test_irregular_task_down_for_a_year_keeps_the_latest_firings() -> None:
    office_hours = Cron(expression="*/5 9-17 * * 1-5", timezone="Europe/Paris")
    due_at = datetime(2025, 5, 1, 7, tzinfo=UTC)  # Thursday 09:00 in Paris
    now = datetime(2026, 5, 1, 0, 0, 30, tzinfo=UTC)  # Friday 02:00 in Paris
    started = clock.perf_counter()
    plan = plan_due(office_hours, due_at, now, "once", grace=timedelta(minutes=5), limit=10)
    assert clock.perf_counter() - started < 0.5
    assert plan.firings[-1] == Firing(datetime(2026, 4, 30, 15, 55, tzinfo=UTC), True)
    assert all(f.scheduled_for >= datetime(2026, 4, 30, tzinfo=UTC) for f in plan.firings)
    assert len(plan.firings) == 11
    assert plan.next_run_at == datetime(2026, 5, 1, 7, tzinfo=UTC)
    # 261 weekdays x 108 firings, plus due_at. The count of the firings jumped over is estimated
    # from the spacing at the start of the outage: here, office hours, it overestimates.
    actual = 261 * 108 + 1
    assert actual < len(plan.firings) + plan.dropped < actual * 5


@settings(max_examples=200, deadline=None, database=None)
@given(
    downtime=st.integers(0, 24 * 60),
    offset=st.integers(0, 59),
    limit=st.integers(1, 12),
    grace_minutes=st.integers(0, 600),
    policy=st.sampled_from(["skip", "once", "all"]),
)
def test_plan_matches_a_reference_for_hourly_tasks(
    downtime: int, offset: int, limit: int, grace_minutes: int, policy: CatchUpPolicy
) -> None:
    """Against a plain reference that lists every due firing (exact for evenly spaced ones)."""
    due_at = at(0) + timedelta(hours=offset)
    now = due_at + timedelta(hours=downtime, minutes=offset)
    grace = timedelta(minutes=grace_minutes)
    plan = plan_due(HOURLY, due_at, now, policy, grace=grace, limit=limit)
    assert plan == reference_plan(HOURLY, due_at, now, policy, grace, limit)


def reference_plan(
    schedule: Schedule,
    due_at: datetime,
    now: datetime,
    policy: CatchUpPolicy,
    grace: timedelta,
    limit: int,
) -> CatchUpPlan:
    due = [due_at]
    while (fire := next_after(schedule, due[-1])) is not None and fire <= now:
        due.append(fire)
    if len(due) == 1:
        run = policy != "skip" or due_at >= now - grace
        return CatchUpPlan((Firing(due_at, run),), fire, 0)
    if policy == "once":
        run_count = 1
    elif policy == "all":
        run_count = min(limit, len(due))
    else:
        run_count = min(limit, len([f for f in due if f >= now - grace]))
    ran = due[len(due) - run_count :]
    skipped = due[: len(due) - run_count][-limit:]
    firings = tuple(Firing(f, False) for f in skipped) + tuple(Firing(f, True) for f in ran)
    return CatchUpPlan(firings, fire, len(due) - len(firings))


def test_out_of_budget_near_now_still_runs_the_latest_firing() -> None:
    """A due_at long before the schedule starts: sparse at first, dense near now."""
    every_minute = Interval(every=timedelta(minutes=1), start=datetime(2026, 5, 1, tzinfo=UTC))
    due_at = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime(2026, 5, 2, 0, 0, 30, tzinfo=UTC)
    plan = plan_due(every_minute, due_at, now, "once", grace=timedelta(minutes=5), limit=3)
    assert plan.firings[-1] == Firing(datetime(2026, 5, 2, tzinfo=UTC), True)
    assert len(plan.firings) == 4
    assert [f.run for f in plan.firings] == [False, False, False, True]
    assert plan.next_run_at == datetime(2026, 5, 2, 0, 1, tzinfo=UTC)
    assert plan.dropped > 0
