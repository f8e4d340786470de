"""Figure 3: what one ``TaskScheduler.tick(now)`` costs when nothing is due.

Beat calls ``tick`` every ``SCHEDULER_TICK_SECONDS`` whatever the load, so its idle cost must
not grow with the number of tasks. Measured at each size in three states: freshly loaded and
vacuumed; right after a mass claim (every claim moves ``next_run_at`` and leaves a dead index
entry in the "due" range, FIELD_NOTES); and after ``VACUUM``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from benchmarks.fixtures import (
    database,
    dead_tuples,
    load_tasks,
    log,
    make_settings,
    utc_seconds,
    vacuum,
)
from benchmarks.report import Figure, Row
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.types import utcnow
from personal_assistant.tools.ai_scheduler.task_scheduler import TaskScheduler

KEY = "idle"
TITLE = "Idle tick cost"
RATIO_TARGET = 1.5
DUE_FRACTION = 10
TICKS = 200
STATES = ("fresh", "after claim, first tick", "after claim", "after VACUUM")

METHOD = """\
**What it means.** The time of one `TaskScheduler.tick(now)` when nothing is due: the empty
claim (`FOR UPDATE SKIP LOCKED` on the `(status, next_run_at)` index), the empty owed-run
dispatch and `seconds_until_next`. Beat pays it every tick (`SCHEDULER_TICK_SECONDS`), so it
must not grow with the number of tasks. Target: at {big:,} tasks within {ratio}x of
{small:,} tasks.

**How it was measured.** In the benchmark process, with a no-op publish and a chosen `now`.
For each size: load the tasks (daily schedules, a tenth of them due at one instant `T`, the
rest hours later) and `VACUUM (ANALYZE)`; then the median of {ticks} ticks at `T - 60 s`
(*fresh*); claim the due tenth with `claim_due(T)` until nothing is due (the *mass claim*);
the first tick at `T` after it, then the median of {ticks} more (*after claim*: the dead index
entries left by the claim are still there unless autovacuum got to them); `VACUUM (ANALYZE)`
of both tables, and the median of {ticks} ticks at `T` (*after VACUUM*). The dead tuples
reported are `pg_stat_user_tables.n_dead_tup` of `ai_tasks` after the after-claim ticks.
"""


@dataclass(frozen=True)
class SizeResult:
    size: int
    claimed: int
    ms: dict[str, float]
    dead_after_claim: int
    autovacuumed: bool


async def _ticks(url: str, settings: Settings, now: datetime, count: int) -> list[float]:
    """Milliseconds of ``count`` successive ticks at ``now``."""
    engine = make_async_engine(url, pool_size=2)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        scheduler = TaskScheduler(engine, settings, lambda ids: None)
        times: list[float] = []
        for _ in range(count):
            began = time.perf_counter()
            await scheduler.tick(now)
            times.append(1000 * (time.perf_counter() - began))
        return times
    finally:
        await engine.dispose()


async def _claim_all(url: str, settings: Settings, now: datetime) -> int:
    engine = make_async_engine(url, pool_size=2)
    try:
        scheduler = TaskScheduler(engine, settings, lambda ids: None)
        claimed = 0
        while (report := await scheduler.claim_due(now)).tasks:
            claimed += report.tasks
        return claimed
    finally:
        await engine.dispose()


def _measure_size(size: int, ticks: int) -> SizeResult:
    with database() as url:
        settings = make_settings(url, "bench_unused:")
        due_at = utc_seconds(utcnow()) + timedelta(minutes=5)
        due = load_tasks(url, size // DUE_FRACTION, start=due_at)
        rest = load_tasks(url, size - due.count, start=due_at + timedelta(hours=1),
                          spread_s=23 * 3600)
        vacuum(url, "ai_tasks", "users")
        log(f"{size:,} tasks loaded in {due.seconds + rest.seconds:.1f} s")
        ms: dict[str, float] = {}
        ms["fresh"] = statistics.median(
            asyncio.run(_ticks(url, settings, due_at - timedelta(seconds=60), ticks))
        )
        _, vacuums_before = dead_tuples(url, "ai_tasks")
        claimed = asyncio.run(_claim_all(url, settings, due_at))
        first, *rest_ticks = asyncio.run(_ticks(url, settings, due_at, ticks + 1))
        ms["after claim, first tick"] = first
        ms["after claim"] = statistics.median(rest_ticks)
        time.sleep(1.5)  # statistics reach pg_stat_user_tables within about a second
        dead, vacuums_after = dead_tuples(url, "ai_tasks")
        vacuum(url, "ai_tasks", "task_runs")
        ms["after VACUUM"] = statistics.median(asyncio.run(_ticks(url, settings, due_at, ticks)))
        log(f"{size:,} tasks: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items())
            + f"; {claimed:,} claimed, {dead:,} dead tuples after the claim")
        return SizeResult(size, claimed, ms, dead, vacuums_after > vacuums_before)


def measure(quick: bool) -> Figure:
    sizes = (10_000, 100_000) if quick else (10_000, 1_000_000)
    ticks = 50 if quick else TICKS
    results = [_measure_size(size, ticks) for size in sizes]
    small, big = results[0], results[-1]
    rows: list[Row] = []
    for state in STATES:
        for result in (small, big):
            is_big = result is big
            ratio = result.ms[state] / small.ms[state] if small.ms[state] else float("inf")
            rows.append(Row(
                f"{result.size:,} tasks, {state}", result.ms[state], "ms",
                target=(f"<= {RATIO_TARGET}x {small.size:,} ({ratio:.2f}x)" if is_big else ""),
                met=ratio <= RATIO_TARGET if is_big else None,
            ))
    notes = [
        f"{r.size:,} tasks: the mass claim took {r.claimed:,} tasks; {r.dead_after_claim:,} dead "
        f"tuples in ai_tasks after it; autovacuum "
        + ("ran on ai_tasks" if r.autovacuumed else "did not run on ai_tasks")
        + " between the claim and the manual VACUUM."
        for r in results
    ]
    return Figure(
        KEY, TITLE, tuple(rows),
        method=METHOD.format(big=big.size, small=small.size, ratio=RATIO_TARGET, ticks=ticks),
        notes=tuple(notes),
        params={"sizes": "/".join(f"{s:,}" for s in sizes), "due": f"1/{DUE_FRACTION}",
                "ticks": ticks},
    )
