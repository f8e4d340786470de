"""Figure 4: how late runs start and finish after the instant they were due.

Real processes: one ``celery beat`` (the project's ``DatabaseScheduler``, which ticks the
``TaskScheduler``) and one ``celery worker``, on the benchmark's database and Redis prefix.
Tasks are loaded while both run, due over the next seconds; lateness comes from the database:
``started_at - scheduled_for`` and ``finished_at - scheduled_for`` of each run.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.fixtures import (
    Service,
    database,
    load_tasks,
    log,
    make_settings,
    process_env,
    redis_prefix,
    start_celery,
    stop,
    token,
    utc_seconds,
    wait_until,
    worker_args,
)
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.workers.routing import worker_queues

KEY = "lateness"
TITLE = "Firing lateness"
TARGET_P99_S = 1.0
WARMUP = 20
BACKGROUND = 100_000  # active tasks that are not due during the measurement
IDLE_S = 10.0
APP = "personal_assistant.workers.celery_app"

METHOD = """\
**What it means.** How long after its due instant a run starts (the worker's claim sets
`started_at`) and finishes, with the real processes: beat's `DatabaseScheduler` ticks
`TaskScheduler` (sleeping until the next due task, at most `SCHEDULER_TICK_SECONDS={tick}`),
publishes, and the worker runs the offline agent. Target: p99 of the start lateness <= {target:.0f}
s.

**How it was measured.** {background:,} active daily tasks, due later, are in the table
throughout. One `celery beat` and one `celery worker` (routed queues, threads pool,
default concurrency) as subprocesses on the benchmark's database and Redis prefix. Once both
are up (a warm-up of {warmup} tasks due at once has run end to end), {n:,} daily tasks are
loaded in one transaction, due from {lead:.0f} s later over {spread:.0f} s, about {per_s:,.0f}
per second on whole seconds (daily schedules have whole-second times). When every run has
succeeded, the percentiles of `started_at - scheduled_for` and `finished_at - scheduled_for`
over those runs are read from the database (`percentile_cont`); `queued_at - scheduled_for`
shows the scheduler's share (it is the `now` of the claim). Before the tasks are loaded, the
CPU time both processes use over {idle_s:.0f} s with nothing due is read from `/proc` (the
*idle CPU*: beat's ticks, the worker's polling).
"""

_PERCENTILES = b"""
SELECT
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM queued_at - scheduled_for)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM queued_at - scheduled_for)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for)),
    max(extract(epoch FROM started_at - scheduled_for)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - scheduled_for)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - scheduled_for)),
    max(extract(epoch FROM finished_at - scheduled_for)),
    count(*)
FROM task_runs WHERE scheduled_for >= %s AND state = 'succeeded'
"""


def _succeeded(url: str, since: datetime) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            b"SELECT count(*) FROM task_runs WHERE scheduled_for >= %s AND state = 'succeeded'",
            (since,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _idle_cpu(services: list[Service], seconds: float) -> dict[str, float]:
    """Percent of one core each service uses over ``seconds`` with nothing due."""
    before = {s.name: s.cpu_seconds() for s in services}
    time.sleep(seconds)
    return {s.name: 100 * (s.cpu_seconds() - before[s.name]) / seconds for s in services}


def measure(quick: bool) -> Figure:
    n, spread, lead = (300, 5.0, 3.0) if quick else (2_000, 20.0, 3.0)
    idle_s = 3.0 if quick else IDLE_S
    with (
        tempfile.TemporaryDirectory(prefix="pa-bench-late-") as tmp,
        redis_prefix() as prefix,
        database() as url,
    ):
        home = Path(tmp)
        settings = make_settings(url, prefix, home)
        env = process_env(url, prefix, home)
        background = 1_000 if quick else BACKGROUND
        bg = load_tasks(url, background, start=utcnow() + timedelta(hours=2), spread_s=3600)
        log(f"loaded {bg.count:,} active tasks due later in {bg.seconds:.1f} s")
        warm_at = utc_seconds(utcnow()) + timedelta(seconds=2)
        load_tasks(url, WARMUP, start=warm_at)
        services = [
            start_celery(
                "worker", APP, worker_args(worker_queues(), f"bench-late-{token()}"), env, home
            ),
            start_celery("beat", APP, ["beat", "-l", "warning"], env, home),
        ]
        try:
            waited = wait_until(
                lambda: _succeeded(url, warm_at) >= WARMUP,
                timeout=90,
                what="the warm-up runs",
                watch=services,
            )
            log(f"beat and worker up (warm-up ran end to end after {waited:.1f} s)")
            idle_cpu = _idle_cpu(services, idle_s)
            log("idle CPU: " + ", ".join(f"{k} {v:.1f} %" for k, v in idle_cpu.items()))
            start = utc_seconds(utcnow()) + timedelta(seconds=lead + 1)
            loaded = load_tasks(url, n, start=start, spread_s=spread)
            log(
                f"loaded {n:,} tasks due from {start:%H:%M:%S} over {spread:.0f} s "
                f"(insert took {loaded.seconds:.2f} s)"
            )
            wait_until(
                lambda: _succeeded(url, start) >= n,
                timeout=lead + spread + 90,
                what=f"{n:,} runs to succeed",
                interval=0.5,
                watch=services,
            )
        finally:
            for service in services:
                stop(service)
        with psycopg.connect(url) as conn:
            row = conn.execute(_PERCENTILES, (start,)).fetchone()
        assert row is not None
    (q50, q99, s50, s99, smax, f50, f99, fmax, count) = (float(v) for v in row)
    log(
        f"start lateness p50 {s50:.3f} s, p99 {s99:.3f} s, max {smax:.3f} s; "
        f"finish p50 {f50:.3f} s, p99 {f99:.3f} s over {count:.0f} runs"
    )
    target = f"<= {TARGET_P99_S * 1000:,.0f} ms"
    rows = (
        Row("start lateness p50 (started_at - scheduled_for)", 1000 * s50, "ms"),
        Row("start lateness p99", 1000 * s99, "ms", target=target, met=s99 <= TARGET_P99_S),
        Row("finish lateness p50 (finished_at - scheduled_for)", 1000 * f50, "ms"),
        Row("finish lateness p99", 1000 * f99, "ms"),
        *(
            Row(f"idle CPU of {name} (one core = 100 %)", pct, "%")
            for name, pct in idle_cpu.items()
        ),
    )
    notes = (
        f"{count:.0f} runs; start lateness max {1000 * smax:,.0f} ms, finish lateness max "
        f"{1000 * fmax:,.0f} ms.",
        f"Claim lateness (queued_at - scheduled_for, the scheduler's share): p50 "
        f"{1000 * q50:,.0f} ms, p99 {1000 * q99:,.0f} ms.",
    )
    return Figure(
        KEY,
        TITLE,
        rows,
        method=METHOD.format(
            background=background,
            tick=settings.tick_seconds,
            target=TARGET_P99_S,
            warmup=WARMUP,
            n=n,
            lead=lead + 1,
            spread=spread,
            per_s=n / spread,
            idle_s=idle_s,
        ),
        notes=notes,
        params={
            "tasks": n,
            "background_tasks": background,
            "spread_s": spread,
            "tick_seconds": settings.tick_seconds,
        },
    )
