"""The scheduler back after 7 days, with 10,000 cron tasks due: every task catches up under its
policy, once, and none starves (issue 9, item 2).

10,000 cron tasks of mixed expressions (business hours ``*/5 9-17 * * 1-5``, hourly, daily,
every two hours) and catch-up policies (``skip``, ``once``, ``all``) are seeded in bulk with
their ``next_run_at`` 7 days in the past, as after a week without a scheduler. Then beat and two
workers start with the shortened chaos timings (``LEASE_MARGIN=2``: PostgreSQL ends a claim's
transaction after 2 s idle). Within a bound every task's ``next_run_at`` lies in the future, and
each task's catch-up rows are exactly the plan of the project's pure core
(:func:`~personal_assistant.core.catchup.plan_due`) for its stored ``next_run_at`` and the
claim's instant (the rows' ``queued_at``): every owed run once, every missed firing recorded
``skipped`` once, nothing stuck. ``CATCHUP_LIMIT=3`` keeps the runs to about 14,000; the
planning work per task is still that of a 7-day outage, and ``SCHEDULER_BATCH=3000`` makes a
claim's planning outlast ``LEASE_MARGIN`` (before the fix, when it was planned inside the claim's
transaction, PostgreSQL ended every claim: no task caught up). The agent is the offline one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from chaos import report
from chaos.harness import FINAL, Chaos, Outcome, _utc
from personal_assistant.core.catchup import plan_due
from personal_assistant.core.next_run import next_after
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_kinds import Schedule
from personal_assistant.tasks.manager import AITaskManager
from support.stack import settings_for

TASKS = 10_000
EXPRESSIONS = ("*/5 9-17 * * 1-5", "0 * * * *", "30 8 * * *", "15 */2 * * *")
POLICIES = ("skip", "once", "all")
DOWN = timedelta(days=7)
CATCHUP_LIMIT = 3
#: Tasks a claim takes at once: planning 3,000 catch-ups takes longer than ``LEASE_MARGIN``.
BATCH = 3000
GRACE = timedelta(seconds=300)  # MISFIRE_GRACE, the default
#: Every task caught up within this (the bound of the scenario), and every run final.
CAUGHT_UP_S = 120
SETTLE_S = 120
#: A claim's instant and its rows' ``queued_at`` may differ by the time to write them.
NOW_SLACK = timedelta(seconds=2)


def _seed(chaos: Chaos) -> dict[int, tuple[str, str, datetime]]:
    """10,000 cron tasks due 7 days ago: ``{task_id: (schedule json, policy, next_run_at)}``.

    One template per (expression, policy), made by the manager; its copies are made in bulk,
    every column identical but the id and the title.
    """
    combos = [(e, p) for e in EXPRESSIONS for p in POLICIES]

    async def templates() -> list[int]:
        made = []
        async with AITaskManager(settings_for(chaos.env)) as manager:
            for i, (expression, policy) in enumerate(combos):
                task = await manager.create_task(
                    chaos.user_id,
                    f"cron {i:02d}",
                    task_type="periodic_task",
                    schedule={"kind": "cron", "expression": expression},
                    notification_channels=["in_app"],
                    catch_up=policy,
                )
                made.append(task.id)
        return made

    made = asyncio.run(templates())
    back = datetime.now(UTC) - DOWN
    for template in made:
        stored = chaos.db.scalar("SELECT schedule::text FROM ai_tasks WHERE id = :t", t=template)
        due = next_after(_schedule(stored), back)
        chaos.db.execute("UPDATE ai_tasks SET next_run_at = :d WHERE id = :t", d=due, t=template)
    columns = [
        name
        for (name,) in chaos.db.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'ai_tasks' AND column_name NOT IN ('id', 'title') "
            "ORDER BY ordinal_position"
        )
    ]
    listed = ", ".join(columns)
    copies = TASKS // len(made)
    for template in made:
        extra = copies - 1 + (1 if template == made[0] else 0) * (TASKS - copies * len(made))
        chaos.db.execute(
            f"INSERT INTO ai_tasks (title, {listed}) "  # column names from the catalogue
            f"SELECT title || ' ' || lpad(g::text, 5, '0'), {listed} "
            "FROM ai_tasks CROSS JOIN generate_series(1, :n) AS g WHERE id = :t ORDER BY g",
            n=extra,
            t=template,
        )
    rows = chaos.db.rows(
        "SELECT id, schedule::text AS schedule, catch_up, next_run_at FROM ai_tasks "
        "WHERE title LIKE 'cron %'"
    )
    assert len(rows) == TASKS, len(rows)
    return {int(r.id): (r.schedule, r.catch_up, _utc(r.next_run_at)) for r in rows}


@lru_cache(maxsize=64)
def _schedule(stored: str) -> Schedule:
    return parse_schedule(json.loads(stored))


@lru_cache(maxsize=100_000)
def _plan(
    stored: str, policy: str, due: datetime, now: datetime
) -> frozenset[tuple[datetime, bool]]:
    plan = plan_due(_schedule(stored), due, now, policy, grace=GRACE, limit=CATCHUP_LIMIT)  # type: ignore[arg-type]  # a stored policy
    return frozenset((f.scheduled_for, f.run) for f in plan.firings)


def _caught_up(chaos: Chaos) -> bool:
    return not chaos.db.scalar(
        "SELECT count(*) FROM ai_tasks WHERE title LIKE 'cron %' AND status = 'active' "
        "AND (next_run_at IS NULL OR next_run_at <= clock_timestamp())"
    )


def _settled(chaos: Chaos) -> bool:
    return not chaos.db.scalar(
        "SELECT count(*) FROM task_runs WHERE state NOT IN ('succeeded', 'failed', 'skipped')"
    )


def _wait(predicate: Any, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def _compare(
    chaos: Chaos, tasks: dict[int, tuple[str, str, datetime]]
) -> tuple[Counter[str], int, int, int]:
    """``(kinds, owed, lost, duplicated)``: each task's first claim's rows against its plan."""
    rows: dict[int, list[Any]] = defaultdict(list)
    for row in chaos.db.rows(
        "SELECT task_id, scheduled_for, state, queued_at FROM task_runs WHERE task_id = ANY(:ids)",
        ids=list(tasks),
    ):
        rows[int(row.task_id)].append(row)
    kinds: Counter[str] = Counter()
    owed = lost = duplicated = 0
    for task_id, (stored, policy, due) in tasks.items():
        mine = rows.get(task_id, [])
        if not mine:
            kinds["no rows"] += 1
            owed += 1
            lost += 1
            continue
        claimed_at = min(_utc(r.queued_at) for r in mine)
        got = Counter(
            (_utc(r.scheduled_for), r.state != "skipped")
            for r in mine
            if _utc(r.queued_at) == claimed_at
        )
        candidates = [
            _plan(stored, policy, due, claimed_at + d)
            for d in (0 * NOW_SLACK, -NOW_SLACK, NOW_SLACK)
        ]
        want = next((c for c in candidates if c == set(got)), candidates[0])
        owed += sum(1 for _, run in want if run)
        lost += sum(1 for firing in want if firing not in got)
        duplicated += sum(n - 1 for n in got.values()) + sum(1 for f in got if f not in want)
        kinds["as planned" if set(got) == want and max(got.values()) == 1 else "differs"] += 1
    return kinds, owed, lost, duplicated


def test_scheduler_back_after_7_days_10k_cron(chaos: Chaos) -> None:
    chaos.env.update(
        {
            "CATCHUP_LIMIT": str(CATCHUP_LIMIT),
            "SCHEDULER_BATCH": str(BATCH),
            "RUNS_PER_MESSAGE": "50",
        }
    )
    tasks = _seed(chaos)
    started = time.monotonic()
    chaos.beat()
    for name in ("w1", "w2"):
        chaos.worker(name)
    caught_up = _wait(lambda: _caught_up(chaos), CAUGHT_UP_S)
    settled = _wait(lambda: _settled(chaos), SETTLE_S) if caught_up is not None else None
    kinds, owed, lost, duplicated = _compare(chaos, tasks)
    states = Counter(
        {
            state: int(n)
            for state, n in chaos.db.rows("SELECT state, count(*) FROM task_runs GROUP BY state")
        }
    )
    stuck = sum(n for s, n in states.items() if s not in FINAL)
    undelivered = int(
        chaos.db.scalar("SELECT count(*) FROM notifications WHERE status <> 'delivered'")
    )
    late = chaos.db.scalar(
        "SELECT count(*) FROM ai_tasks WHERE title LIKE 'cron %' AND status = 'active' "
        "AND (next_run_at IS NULL OR next_run_at <= clock_timestamp())"
    )
    notes = (
        f"{TASKS} cron tasks ({len(EXPRESSIONS)} expressions x skip/once/all) due 7 days ago, "
        f"CATCHUP_LIMIT={CATCHUP_LIMIT}: "
        + (
            f"all caught up in {caught_up:.0f} s"
            if caught_up is not None
            else f"{late} tasks still due after {CAUGHT_UP_S} s"
        )
        + f"; {kinds['as planned']} of {TASKS} tasks' rows exactly as planned"
    )
    outcome = Outcome(
        scenario=chaos.name,
        scheduled=owed,
        completed=states["succeeded"] + states["failed"],
        lost=lost,
        duplicated=duplicated,
        stuck=stuck,
        notifications_duplicated=0,
        notifications_redelivered=0,
        notifications_undelivered=undelivered,
        recover_s=None if caught_up is None else round(caught_up, 1),
        notes=notes,
        extra={
            "states": dict(states),
            "tasks": dict(kinds),
            "settled_s": None if settled is None else round(settled, 1),
            "elapsed_s": round(time.monotonic() - started, 1),
        },
    )
    report.record(outcome)
    assert caught_up is not None, (late, chaos.logs("beat"))
    assert settled is not None, (states, chaos.logs("w1", "w2"))
    assert outcome.clean, outcome
    assert kinds == {"as planned": TASKS}, kinds
