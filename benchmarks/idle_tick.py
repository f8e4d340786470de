"""Figure 3: what one ``TaskScheduler.tick(now)`` costs when nothing is due.

Beat calls ``tick`` every ``SCHEDULER_TICK_SECONDS`` whatever the load, so its idle cost must
not grow with the number of tasks. Measured at each size in several states: freshly loaded and
vacuumed; right after a mass claim (every claim moves ``next_run_at`` and leaves a dead index
entry in the "due" range, FIELD_NOTES; the claimed runs stay queued, as in a backlog); after
``VACUUM``; and once the runs are finished.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text

from benchmarks.fixtures import (
    database,
    dead_tuples,
    execute,
    load_tasks,
    log,
    make_settings,
    utc_seconds,
    vacuum,
)
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import TaskScheduler

KEY = "idle"
TITLE = "Idle tick cost"
RATIO_TARGET = 1.5
DUE_FRACTION = 10
TICKS = 200
ROUNDS = 10
STATES = (
    "fresh",
    "after claim, first tick",
    "after claim",
    "after VACUUM",
    "runs finished, after VACUUM",
)

#: What the workers would have done with the claimed runs (no worker runs here).
FINISH_RUNS = (
    "UPDATE task_runs SET state = 'succeeded', started_at = queued_at, finished_at = queued_at, "
    "lease_expires_at = NULL WHERE state = 'queued'"
)

METHOD = """\
**What it means.** The time of one `TaskScheduler.tick(now)` when nothing is due: whatever
reads the scheduler makes to find that no task is due and no run is owed a dispatch (on the
`(status, next_run_at)` and `(state, lease_expires_at)` indexes), and how long to sleep. Beat
pays it every tick (`SCHEDULER_TICK_SECONDS`), so it must not grow with the number of tasks,
nor stay high after a mass claim. Target: at {big:,} tasks within {ratio}x of
{small:,} tasks.

**How it was measured.** In the benchmark process, with a no-op publish and a chosen `now`.
Both databases are loaded first (daily schedules, a tenth of the tasks due at one instant `T`,
the rest hours later), vacuumed and checkpointed. Each figure is a median of {ticks} ticks, taken
alternately on the two databases in {rounds} rounds, so that a change in the machine's
background load hits both sizes alike. *Fresh*: ticks at `T - 60 s`. Then the due tenth is
claimed with `claim_due(T)` until nothing is due (the *mass claim*), and ticks at `T` follow:
the first one on its own, then the median of the next ones (*after claim*: the claim's dead
index entries are still there unless autovacuum got to them). *After VACUUM*: ticks at `T`
after `VACUUM (ANALYZE)` of `ai_tasks` and `task_runs`; until then the claimed runs are still
`queued` (no worker runs here), as during a backlog. *Runs finished, after VACUUM*: the runs
are then marked `succeeded` with one `UPDATE`, as the workers would have left them, and both
tables vacuumed again. The dead tuples reported are `pg_stat_user_tables.n_dead_tup` of
`ai_tasks` just before the first VACUUM.
"""


@dataclass
class Database:
    size: int
    url: str
    due_at: datetime
    claimed: int = 0
    dead_after_claim: int = 0
    autovacuumed: bool = False
    ms: dict[str, float] = field(default_factory=dict)


async def _tick_ms(scheduler: TaskScheduler, now: datetime) -> float:
    began = time.perf_counter()
    await scheduler.tick(now)
    return 1000 * (time.perf_counter() - began)


async def _interleaved(
    schedulers: dict[int, TaskScheduler], now: dict[int, datetime], ticks: int
) -> dict[int, float]:
    """Median tick time per size, alternating between the sizes in rounds.

    The machine is shared: alternating makes a change in background load hit every size
    alike, so the ratio between sizes holds even when the absolute figures drift.
    """
    samples: dict[int, list[float]] = {size: [] for size in schedulers}
    for _ in range(ROUNDS):
        for size, scheduler in schedulers.items():
            for _ in range(max(1, ticks // ROUNDS)):
                samples[size].append(await _tick_ms(scheduler, now[size]))
    return {size: statistics.median(values) for size, values in samples.items()}


async def _measure(dbs: list[Database], ticks: int) -> None:
    engines = {db.size: make_async_engine(db.url, pool_size=2) for db in dbs}
    try:
        schedulers: dict[int, TaskScheduler] = {}
        for db in dbs:
            async with engines[db.size].connect() as conn:
                await conn.execute(text("SELECT 1"))
            settings = make_settings(db.url, "bench_unused:")
            schedulers[db.size] = TaskScheduler(engines[db.size], settings, _no_publish)
        before = {db.size: db.due_at - timedelta(seconds=60) for db in dbs}
        at_due = {db.size: db.due_at for db in dbs}

        def record(state: str, medians: dict[int, float]) -> None:
            for db in dbs:
                db.ms[state] = medians[db.size]
            log(f"{state}: " + ", ".join(f"{s:,} tasks {ms:.2f} ms" for s, ms in medians.items()))

        record("fresh", await _interleaved(schedulers, before, ticks))
        vacuums_before = {db.size: dead_tuples(db.url, "ai_tasks")[1] for db in dbs}
        for db in dbs:
            began = time.perf_counter()
            while (report := await schedulers[db.size].claim_due(db.due_at)).tasks:
                db.claimed += report.tasks
            log(
                f"{db.size:,} tasks: mass claim of {db.claimed:,} in "
                f"{time.perf_counter() - began:.1f} s"
            )
        record(
            "after claim, first tick",
            {db.size: await _tick_ms(schedulers[db.size], db.due_at) for db in dbs},
        )
        record("after claim", await _interleaved(schedulers, at_due, ticks))
        time.sleep(1.5)  # table statistics reach pg_stat_user_tables within about a second
        for db in dbs:
            db.dead_after_claim, vacuums = dead_tuples(db.url, "ai_tasks")
            db.autovacuumed = vacuums > vacuums_before[db.size]
            vacuum(db.url, "ai_tasks", "task_runs")
        record("after VACUUM", await _interleaved(schedulers, at_due, ticks))
        for db in dbs:
            execute(db.url, FINISH_RUNS)
            vacuum(db.url, "ai_tasks", "task_runs")
        record("runs finished, after VACUUM", await _interleaved(schedulers, at_due, ticks))
    finally:
        for engine in engines.values():
            await engine.dispose()


def _no_publish(run_ids: Sequence[int]) -> None:
    return None


def measure(quick: bool) -> Figure:
    sizes = (10_000, 100_000) if quick else (10_000, 1_000_000)
    ticks = 60 if quick else TICKS
    with ExitStack() as stack:
        dbs: list[Database] = []
        for size in sizes:
            url = stack.enter_context(database())
            due_at = utc_seconds(utcnow()) + timedelta(minutes=10)
            due = load_tasks(url, size // DUE_FRACTION, start=due_at)
            rest = load_tasks(
                url, size - due.count, start=due_at + timedelta(hours=1), spread_s=23 * 3600
            )
            vacuum(url, "ai_tasks", "task_runs", "users")
            execute(url, "CHECKPOINT")  # write the load out now, not during the measurement
            log(f"{size:,} tasks loaded in {due.seconds + rest.seconds:.1f} s")
            dbs.append(Database(size, url, due_at))
        asyncio.run(_measure(dbs, ticks))
    small, big = dbs[0], dbs[-1]
    rows: list[Row] = []
    for state in STATES:
        for db in (small, big):
            ratio = db.ms[state] / small.ms[state] if small.ms[state] else float("inf")
            rows.append(
                Row(
                    f"{db.size:,} tasks, {state}",
                    db.ms[state],
                    "ms",
                    target=f"<= {RATIO_TARGET}x {small.size:,} ({ratio:.2f}x)" if db is big else "",
                    met=ratio <= RATIO_TARGET if db is big else None,
                )
            )
    notes = [
        f"{db.size:,} tasks: the mass claim took {db.claimed:,} tasks; {db.dead_after_claim:,} "
        "dead tuples in ai_tasks after it; autovacuum "
        + ("ran on ai_tasks" if db.autovacuumed else "did not run on ai_tasks")
        + " between the claim and the manual VACUUM."
        for db in dbs
    ]
    return Figure(
        KEY,
        TITLE,
        tuple(rows),
        method=METHOD.format(
            big=big.size, small=small.size, ratio=RATIO_TARGET, ticks=ticks, rounds=ROUNDS
        ),
        notes=tuple(notes),
        params={
            "sizes": "/".join(f"{s:,}" for s in sizes),
            "due": f"1/{DUE_FRACTION}",
            "ticks": ticks,
        },
    )
