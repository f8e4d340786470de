"""Figure 1: how fast ``TaskScheduler.tick`` claims due tasks, with and without the broker.

One database grows from the smaller size to the larger one (the extra tasks are not due). At
each size the same due tasks (all due in the same second) are claimed twice: once with a no-op
publish, once with ``publish_runs`` on the project's Celery app, configured for this
benchmark's Redis key prefix. Before each pass the runs are deleted, the due tasks are made due
again and both tables are vacuumed, so every pass starts from the same state.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from benchmarks.fixtures import (
    Loaded,
    database,
    delete_prefixed,
    execute,
    load_tasks,
    log,
    make_settings,
    queue_depth,
    redis_prefix,
    scalar,
    utc_seconds,
    vacuum,
)
from benchmarks.report import Figure, Row
from benchmarks.rounds import median_round
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.runs.scheduler import BURST_CLAIMERS, Publish, TaskScheduler
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import publish_runs

KEY = "claim"
TITLE = "Scheduler claim rate"
TARGET_SECONDS = 3.0
TARGET_DUE = 100_000
#: Every task of the largest table due at once: dispatched within this many seconds per million.
ALL_DUE_SECONDS_PER_MILLION = 30.0
#: The tasks' owners: 100 tasks each at 1,000,000 tasks, the default USER_DISPATCH_LIMIT.
USERS = 10_000
NO_OP = "no-op publish"
REDIS = "publish to Redis"
ALL_DUE = "all due at once, publish to Redis"
#: Passes of each kind; the figure is the median one. Single passes of the same code moved by
#: a third from one run of the benchmark to the next (100,000 due: 2.74 to 3.95 s).
ROUNDS = 3

METHOD = """\
**What it means.** How many due tasks per second the scheduler turns into runs: it selects a
batch of due tasks (`FOR UPDATE SKIP LOCKED`), inserts their runs, advances `next_run_at` and
commits, then publishes the new run ids. The target is that {target_due:,} tasks due in the
same second are all dispatched within {target_s:.0f} s, i.e. at least {target_rate:,.0f}
tasks/s with the broker.

**How it was measured.** `TaskScheduler.tick(now)`, the scheduler's real step, called until
nothing is due, in the benchmark process: it claims in batches of `SCHEDULER_BATCH={batch}`
and, after a full first batch, with {claimers} concurrent claimers on their own connections. The
tasks are daily schedules loaded with `INSERT ... SELECT generate_series`; {due:,} of them are due
in the same second, the others are due later. Two publish functions: a no-op, and the real
`publish_runs` on the project's Celery app (`app.use_settings(...)` with this benchmark's Redis
key prefix; `RUNS_PER_MESSAGE={per_message}`, messages sent with `producer.batch()`). The
difference between the two passes, and the time measured inside the publish function, is the
cost of the broker. Nobody consumes the queue; its depth is checked after each pass. Before
each pass the runs are deleted, the due tasks made due again, both tables vacuumed and a
`CHECKPOINT` taken. Last, every task of the largest table is put on the due tasks' schedule,
made due at once and claimed with the Redis publish (target: {all_target:.0f} s per million
tasks). The tasks belong to {users:,} users, so that even then no user has more runs than
`USER_DISPATCH_LIMIT` (fair dispatch would rightly keep the rest in PostgreSQL). Each kind of
pass runs {rounds} times (at each size, no-op and Redis passes alternately); a row gives the
median pass, the notes every pass. A plan is
made once per distinct schedule, due instant and catch-up policy of a batch, so a burst of tasks
that share a schedule costs one plan. The notes give the CPU time of the scheduler process
(`time.process_time`) beside the wall time: the rest is waiting for PostgreSQL and Redis, or
for a core.
"""


@dataclass(frozen=True)
class Claimed:
    """What one claim loop did, and where its time went."""

    tasks: int
    runs: int
    batches: int
    seconds: float
    publish_seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Pass:
    size: int
    mode: str
    claimed: Claimed
    messages: int


class _TimedPublish:
    """A publish function that also adds up the time spent in it."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self.seconds = 0.0
        self.calls = 0
        self.run_ids = 0

    def __call__(self, run_ids: Sequence[int]) -> None:
        began = time.perf_counter()
        self._publish(run_ids)
        self.seconds += time.perf_counter() - began
        self.calls += 1
        self.run_ids += len(run_ids)


async def claim_until_empty(
    url: str, settings: Settings, publish: Publish, now: datetime
) -> Claimed:
    """``TaskScheduler.tick(now)`` until nothing is due, timed."""
    engine = make_async_engine(url, pool_size=2)
    timed = _TimedPublish(publish)
    try:
        async with engine.connect() as conn:  # open the pool's connection before timing
            await conn.execute(text("SELECT 1"))
        scheduler = TaskScheduler(engine, settings, timed)
        began, cpu = time.perf_counter(), time.process_time()
        while await scheduler.tick(now) == 0.0:  # 0.0: the tick's time budget ran out
            pass
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        # One run per due task (daily schedules, no catch-up), one publish per claimed batch.
        runs = timed.run_ids
        return Claimed(runs, runs, timed.calls, seconds, timed.seconds, cpu)
    finally:
        await engine.dispose()


def _make_due_again(url: str, due: Loaded, due_at: datetime) -> None:
    execute(
        url,
        "DELETE FROM task_runs",
        f"UPDATE ai_tasks SET next_run_at = '{due_at.isoformat()}' "
        f"WHERE id BETWEEN {due.first_id} AND {due.last_id}",
    )
    vacuum(url, "ai_tasks", "task_runs")
    execute(url, "CHECKPOINT")  # every pass starts with the same clean buffers


def _no_publish(run_ids: Sequence[int]) -> None:
    return None


def measure(quick: bool) -> Figure:
    sizes = (20_000, 200_000) if quick else (100_000, 1_000_000)
    due_count = 20_000 if quick else TARGET_DUE
    rounds = 1 if quick else ROUNDS
    passes: list[Pass] = []
    with redis_prefix() as prefix, database() as url:
        settings = make_settings(url, prefix)
        app.use_settings(settings)
        per_message = settings.runs_per_message

        def to_redis(run_ids: Sequence[int]) -> None:
            publish_runs(app, run_ids, per_message=per_message)

        due_at = utc_seconds(utcnow()) - timedelta(seconds=30)
        # USERS owners: a burst of every task is within USER_DISPATCH_LIMIT runs per user.
        due = load_tasks(url, due_count, start=due_at, users=USERS)
        loads = [due]
        log(f"loaded {due.count:,} due tasks in {due.seconds:.1f} s")
        total = due.count
        for size in sizes:
            if size > total:
                extra = load_tasks(
                    url, size - total, start=due_at + timedelta(hours=1), spread_s=23 * 3600
                )
                total = size
                loads.append(extra)
                log(f"loaded {extra.count:,} more tasks (not due) in {extra.seconds:.1f} s")
            for mode, publish in ((NO_OP, _no_publish), (REDIS, to_redis)) * rounds:
                _make_due_again(url, due, due_at)
                delete_prefixed(prefix)
                claimed = asyncio.run(claim_until_empty(url, settings, publish, utcnow()))
                messages = queue_depth(prefix) if mode == REDIS else 0
                stored = scalar(url, "SELECT count(*) FROM task_runs")
                if not claimed.tasks == claimed.runs == stored == due.count:
                    raise RuntimeError(f"{claimed} with {stored} runs stored; expected {due.count}")
                # Every run id sent, chunked per claimed batch (concurrent claimers make some
                # batches short, so a few more messages than runs / per_message).
                fewest = math.ceil(claimed.runs / per_message)
                most = claimed.batches * math.ceil(settings.claim_batch / per_message)
                if mode == REDIS and not fewest <= messages <= most:
                    raise RuntimeError(f"{messages} messages queued for {claimed.runs} runs")
                passes.append(Pass(size, mode, claimed, messages))
                log(
                    f"{size:,} tasks, {mode}: {claimed.tasks:,} claimed in "
                    f"{claimed.seconds:.2f} s ({claimed.rate:,.0f}/s; publishing "
                    f"{claimed.publish_seconds:.2f} s, {messages} messages; "
                    f"{claimed.cpu_seconds:.1f} s CPU in this process)"
                )
        # Every task on the due tasks' schedule ("daily at" the due instant's time), due now.
        execute(
            url,
            "UPDATE ai_tasks SET schedule = d.schedule "
            f"FROM (SELECT schedule FROM ai_tasks WHERE id = {due.first_id}) AS d "
            f"WHERE ai_tasks.id > {due.last_id}",
        )
        everything = Loaded(due.first_id, loads[-1].last_id, 0.0)
        for _ in range(rounds):
            _make_due_again(url, everything, due_at)
            delete_prefixed(prefix)
            claimed = asyncio.run(claim_until_empty(url, settings, to_redis, utcnow()))
            stored = scalar(url, "SELECT count(*) FROM task_runs")
            if not claimed.tasks == stored == total:
                raise RuntimeError(f"{claimed} with {stored} runs stored; expected {total}")
            passes.append(Pass(total, ALL_DUE, claimed, queue_depth(prefix)))
            log(
                f"{total:,} tasks, all due: claimed in {claimed.seconds:.2f} s "
                f"({claimed.rate:,.0f}/s)"
            )
            delete_prefixed(prefix)
    return _figure(passes, due_count, settings, loads, rounds)


def _medians(passes: Sequence[Pass]) -> list[Pass]:
    """The pass of median time of each (size, mode), in the order they first ran."""
    kinds = list(dict.fromkeys((p.size, p.mode) for p in passes))
    return [
        median_round([p for p in passes if (p.size, p.mode) == kind], lambda p: p.claimed.seconds)
        for kind in kinds
    ]


def _figure(
    passes: list[Pass], due_count: int, settings: Settings, loads: list[Loaded], rounds: int
) -> Figure:
    target_s = TARGET_SECONDS * due_count / TARGET_DUE
    rows: list[Row] = []
    notes: list[str] = []
    medians = _medians(passes)
    for p in medians:
        c = p.claimed
        if p.mode == ALL_DUE:
            all_target = ALL_DUE_SECONDS_PER_MILLION * p.size / 1_000_000
            rows.append(Row(f"{p.size:,} tasks, {p.mode}", c.rate, "tasks/s"))
            rows.append(
                Row(
                    f"{p.size:,} tasks: all {p.size:,} due dispatched to Redis in",
                    c.seconds,
                    "s",
                    target=f"<= {all_target:.0f} s",
                    met=c.seconds <= all_target,
                )
            )
        else:
            rows.append(Row(f"{p.size:,} tasks, {due_count:,} due, {p.mode}", c.rate, "tasks/s"))
        if p.mode == REDIS:
            rows.append(
                Row(
                    f"{p.size:,} tasks: {due_count:,} due dispatched to Redis in",
                    c.seconds,
                    "s",
                    target=f"<= {target_s:g} s",
                    met=c.seconds <= target_s,
                )
            )
        idle = c.seconds - c.cpu_seconds
        every = ", ".join(
            f"{q.claimed.seconds:.2f}" for q in passes if (q.size, q.mode) == (p.size, p.mode)
        )
        notes.append(
            f"{p.size:,} tasks, {p.mode}: passes of {every} s; the median one: {c.tasks:,} tasks "
            f"in {c.batches} batches, {c.seconds:.2f} s; the scheduler process used "
            f"{c.cpu_seconds:.1f} s of CPU ({1e6 * c.cpu_seconds / c.tasks:,.0f} ms per 1,000 "
            "tasks) and waited "
            f"{max(0.0, idle):.1f} s (PostgreSQL, Redis, other processes)"
            + (
                f"; publishing {p.messages:,} messages took {c.publish_seconds:.2f} s "
                f"({1e6 * c.publish_seconds / c.runs:,.0f} ms per 1,000 runs, "
                f"{100 * c.publish_seconds / c.seconds:.0f} % of the pass)."
                if p.mode != NO_OP
                else "."
            )
        )
    steps = ", then ".join(f"{load.count:,} tasks in {load.seconds:.1f} s" for load in loads)
    notes.append(f"Bulk load with `INSERT ... SELECT generate_series`: {steps}.")
    return Figure(
        KEY,
        TITLE,
        tuple(rows),
        method=METHOD.format(
            target_due=TARGET_DUE,
            target_s=TARGET_SECONDS,
            target_rate=TARGET_DUE / TARGET_SECONDS,
            batch=settings.claim_batch,
            claimers=BURST_CLAIMERS,
            due=due_count,
            per_message=settings.runs_per_message,
            all_target=ALL_DUE_SECONDS_PER_MILLION,
            users=USERS,
            rounds=rounds,
        ),
        notes=tuple(notes),
        series={
            "claim_rate": {
                "sizes": [p.size for p in medians if p.mode == REDIS],
                "rates": [p.claimed.rate for p in medians if p.mode == REDIS],
            }
        },
        params={
            "due": due_count,
            "batch": settings.claim_batch,
            "runs_per_message": settings.runs_per_message,
        },
    )
