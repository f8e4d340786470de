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
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from benchmarks.fixtures import (
    database,
    dead_tuples,
    execute,
    load_tasks,
    log,
    make_settings,
    scalar,
    utc_seconds,
    vacuum,
)
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import _NEXT_DUE, TaskScheduler

KEY = "idle"
TITLE = "Idle tick cost"
RATIO_TARGET = 1.5
DUE_FRACTION = 10
#: At most this many due tasks (the mass claim): claiming a million takes minutes at today's
#: claim rate, and the claim rate is the claim benchmark's subject, not this one's.
DUE_MAX = 100_000
SIZES = (10_000, 1_000_000, 10_000_000)
QUICK_SIZES = (10_000, 100_000)
#: Concurrent inserts for the tasks that are not due, from this size on (see _load_in_parts).
PARALLEL_FROM = 1_000_000
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
The {count} databases ({sizes} tasks) are loaded first with `INSERT ... SELECT generate_series`
(daily schedules; a tenth of the tasks, at most {due_max:,}, due at one instant `T`, the rest
spread over the 23 hours from `T + 1 h`, inserted by two concurrent statements from
{parallel_from:,} tasks on), vacuumed and checkpointed. Each figure is a median of {ticks}
ticks per size, taken in {rounds} rounds that go through the databases in turn, so that a
change in the machine's background load hits every size alike. *Fresh*: ticks at `T - 60 s`.
Then the due tasks are claimed with `claim_due(T)` until nothing is due (the *mass claim*),
and ticks at `T` follow: the first one on its own, then the median of the next ones (*after
claim*: the claim's dead index entries are still there unless autovacuum got to them).
*After VACUUM*: ticks at `T` after `VACUUM (ANALYZE)` of `ai_tasks` and `task_runs`; until
then the claimed runs are still `queued` (no worker runs here), as during a backlog. (Since
PostgreSQL 14 a VACUUM skips its index pass when under 2 % of the table's pages hold dead
tuples, which a claim of 1 % of the tasks does not reach: the claim's dead index entries
outlived the VACUUM, and at 10,000,000 tasks the tick read about 508 buffers instead of 15.
Migration 0016 sets `vacuum_index_cleanup = on` on both tables, so every VACUUM cleans their
indexes: the buffers in the notes show it.) *Runs
finished, after VACUUM*: the runs are then marked `succeeded` with one `UPDATE`, as the
workers would have left them, and both tables vacuumed again. The dead tuples reported are
`pg_stat_user_tables.n_dead_tup` of `ai_tasks` just before the first VACUUM. The buffers in
the notes are those the tick's one read (`_NEXT_DUE`) touches, from `EXPLAIN (ANALYZE,
BUFFERS)` run once per state and size right after the state's ticks.
"""

_EXPLAIN = (
    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
    + str(_NEXT_DUE.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
).encode()


@dataclass
class Database:
    size: int
    url: str
    due_at: datetime
    load_s: float = 0.0
    size_mb: float = 0.0
    claimed: int = 0
    claim_s: float = 0.0
    dead_after_claim: int = 0
    autovacuumed: bool = False
    ms: dict[str, float] = field(default_factory=dict)
    buffers: dict[str, int] = field(default_factory=dict)


def _buffers(url: str) -> int:
    """Shared buffers (hit or read) the tick's read touches, from ``EXPLAIN (ANALYZE, BUFFERS)``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(_EXPLAIN).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


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
                db.buffers[state] = _buffers(db.url)
            log(
                f"{state}: "
                + ", ".join(
                    f"{db.size:,} tasks {db.ms[state]:.2f} ms ({db.buffers[state]:,} buffers)"
                    for db in dbs
                )
            )

        record("fresh", await _interleaved(schedulers, before, ticks))
        vacuums_before = {db.size: dead_tuples(db.url, "ai_tasks")[1] for db in dbs}
        for db in dbs:
            began = time.perf_counter()
            while (report := await schedulers[db.size].claim_due(db.due_at)).tasks:
                db.claimed += report.tasks
            db.claim_s = time.perf_counter() - began
            log(f"{db.size:,} tasks: mass claim of {db.claimed:,} in {db.claim_s:.1f} s")
        first = {db.size: await _tick_ms(schedulers[db.size], db.due_at) for db in dbs}
        record("after claim, first tick", first)
        record("after claim", await _interleaved(schedulers, at_due, ticks))
        time.sleep(1.5)  # table statistics reach pg_stat_user_tables within about a second
        for db in dbs:
            db.dead_after_claim, vacuums = dead_tuples(db.url, "ai_tasks")
            db.autovacuumed = vacuums > vacuums_before[db.size]
            began = time.perf_counter()
            vacuum(db.url, "ai_tasks", "task_runs")
            took = time.perf_counter() - began
            log(f"{db.size:,} tasks: VACUUM after the claim took {took:.1f} s")
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


def _load_in_parts(url: str, count: int, *, start: datetime, spread_s: float, parts: int) -> float:
    """``load_tasks`` of ``count`` tasks over ``spread_s`` as ``parts`` concurrent inserts.

    Part k loads its share of the tasks, due over the k-th slice of ``[start, start +
    spread_s)``, on a connection of its own: with two inserting backends a ten-million-row load
    takes about a third less time on two cores. The users must exist already (a first
    ``load_tasks``), or each part would create its own. Returns the seconds taken.
    """
    began = time.perf_counter()
    slice_s = spread_s / parts
    counts = [count // parts + (1 if k < count % parts else 0) for k in range(parts)]
    with ThreadPoolExecutor(parts) as pool:
        futures = [
            pool.submit(
                load_tasks, url, n, start=start + timedelta(seconds=k * slice_s), spread_s=slice_s
            )
            for k, n in enumerate(counts)
        ]
        for future in futures:
            future.result()
    return time.perf_counter() - began


def _load(url: str, size: int) -> Database:
    """Load ``size`` tasks into the database at ``url``: the due ones at ``T``, the rest later."""
    due_at = utc_seconds(utcnow()) + timedelta(minutes=10)
    due = load_tasks(url, min(size // DUE_FRACTION, DUE_MAX), start=due_at)
    rest = size - due.count
    later = due_at + timedelta(hours=1)
    parts = 2 if size >= PARALLEL_FROM else 1
    rest_s = _load_in_parts(url, rest, start=later, spread_s=23 * 3600, parts=parts)
    began = time.perf_counter()
    vacuum(url, "ai_tasks", "task_runs", "users")
    execute(url, "CHECKPOINT")  # write the load out now, not during the measurement
    settle_s = time.perf_counter() - began
    mb = float(str(scalar(url, "SELECT pg_database_size(current_database())"))) / 2**20
    db = Database(size, url, due_at, load_s=due.seconds + rest_s, size_mb=mb)
    log(
        f"{size:,} tasks loaded in {db.load_s:.1f} s (then VACUUM and CHECKPOINT "
        f"{settle_s:.1f} s); database {mb:,.0f} MiB"
    )
    return db


def _rows(dbs: list[Database]) -> list[Row]:
    """Per state, each size's median tick; the largest size's ratio to the smallest is judged."""
    small, big = dbs[0], dbs[-1]
    rows: list[Row] = []
    for state in STATES:
        for db in dbs:
            ratio = db.ms[state] / small.ms[state] if small.ms[state] else float("inf")
            target = ""
            if db is big:
                target = f"<= {RATIO_TARGET}x {small.size:,} ({ratio:.2f}x)"
            elif db is not small:
                target = f"({ratio:.2f}x {small.size:,})"
            met = ratio <= RATIO_TARGET if db is big else None
            rows.append(Row(f"{db.size:,} tasks, {state}", db.ms[state], "ms", target, met))
    return rows


def _notes(dbs: list[Database]) -> list[str]:
    notes = [
        f"{db.size:,} tasks: loaded in {db.load_s:.0f} s, database {db.size_mb:,.0f} MiB; the "
        f"mass claim took {db.claimed:,} tasks in {db.claim_s:.1f} s; {db.dead_after_claim:,} "
        "dead tuples in ai_tasks after it; autovacuum "
        + ("ran on ai_tasks" if db.autovacuumed else "did not run on ai_tasks")
        + " between the claim and the manual VACUUM."
        for db in dbs
    ]
    notes.append(
        "Buffers the tick's read touches (EXPLAIN ANALYZE), per state: "
        + "; ".join(
            f"{state}: " + ", ".join(f"{db.buffers[state]:,}" for db in dbs) for state in STATES
        )
        + " (in the order "
        + ", ".join(f"{db.size:,}" for db in dbs)
        + " tasks)."
    )
    return notes


def measure(quick: bool) -> Figure:
    sizes = QUICK_SIZES if quick else SIZES
    ticks = 60 if quick else TICKS
    with ExitStack() as stack:
        dbs = [_load(stack.enter_context(database()), size) for size in sizes]
        asyncio.run(_measure(dbs, ticks))
    small, big = dbs[0], dbs[-1]
    return Figure(
        KEY,
        TITLE,
        tuple(_rows(dbs)),
        method=METHOD.format(
            big=big.size,
            small=small.size,
            ratio=RATIO_TARGET,
            ticks=ticks,
            rounds=ROUNDS,
            count=len(dbs),
            sizes="/".join(f"{s:,}" for s in sizes),
            due_max=DUE_MAX,
            parallel_from=PARALLEL_FROM,
        ),
        notes=tuple(_notes(dbs)),
        params={
            "sizes": "/".join(f"{s:,}" for s in sizes),
            "due": f"1/{DUE_FRACTION}, at most {DUE_MAX:,}",
            "ticks": ticks,
        },
    )
