"""Figure: a worker's memory stays flat over 100,000 runs.

One real ``celery worker`` (the config's threads pool, the offline agent) runs wave after wave
of due tasks; its RSS and PSS are read from ``/proc`` after the first 1,000 runs and after the
last of 100,000. The same tasks serve every wave: each wave makes them all due again, at a
second of its own.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.claim_rate import claim_until_empty
from benchmarks.fixtures import (
    database,
    execute,
    load_tasks,
    log,
    make_settings,
    process_env,
    redis_prefix,
    start_celery,
    stop,
    token,
    utc_seconds,
    vacuum,
    wait_until,
    worker_args,
)
from benchmarks.process_tree import tree_memory
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import run_publisher
from personal_assistant.workers.routing import worker_queues

KEY = "memory"
TITLE = "Worker memory over 100,000 runs"
FIRST = 1_000  # runs before the first reading
TOTAL = 100_000  # runs before the last reading
WAVE = 9_900  # tasks made due at once after the first reading: 10 waves to TOTAL
QUICK_TOTAL, QUICK_WAVE = 10_000, 3_000
GOAL = 1.1  # RSS after TOTAL runs / RSS after FIRST runs, at most
SETTLE_S = 2.0  # idle time before each reading

METHOD = """\
**What it means.** A worker runs for weeks: whatever it keeps per run (caches, logs, metrics
labels, connections) must not pile up. Target: the worker's RSS after {total:,} runs within
{goal:g}x of its RSS after {first:,}.

**How it was measured.** One `celery -A personal_assistant.workers.celery_app worker` with the
routed queues, the config's threads pool and concurrency, the offline agent, and the same
settings as the end-to-end figure. {wave:,} daily tasks (half reminders, half periodic tasks
that read their previous results) are loaded once. Wave after wave, the benchmark makes tasks
due (an `UPDATE` of `next_run_at` to a second of the wave's own, then `VACUUM`), claims them
with `TaskScheduler` and the real `publish_runs`, and waits until every run of the wave has
ended; the first wave has {first:,} tasks, the others {wave:,}, until {total:,} runs. After
the first wave and after the last, the worker idles {settle:g} s and its memory is read from
`/proc`: RSS (`VmRSS` of `/proc/<pid>/status`) and PSS (`/proc/<pid>/smaps_rollup`), summed
over the worker process and its children (the threads pool has none). Ratio = RSS after
{total:,} runs / RSS after {first:,}. Nothing is collected or trimmed by the benchmark.
"""


@dataclass(frozen=True)
class Reading:
    runs: int
    rss_mib: float
    pss_mib: float


def _wave_ended(url: str, at: datetime, size: int) -> bool:
    """Whether every run of the wave due ``at`` has ended."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            b"SELECT count(*) FROM task_runs WHERE scheduled_for = %s "
            b"AND state IN ('succeeded', 'failed')",
            (at,),
        ).fetchone()
    return row is not None and int(row[0]) >= size


def _succeeded(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(b"SELECT count(*) FROM task_runs WHERE state = 'succeeded'").fetchone()
    return 0 if row is None else int(row[0])


def _make_due(url: str, first_id: int, count: int, due_at: datetime) -> None:
    execute(
        url,
        f"UPDATE ai_tasks SET next_run_at = '{due_at.isoformat()}' "
        f"WHERE id BETWEEN {first_id} AND {first_id + count - 1}",
    )
    vacuum(url, "ai_tasks", "task_runs")


def _next_second(previous: datetime | None) -> datetime:
    """A due instant just past, and later than the previous wave's (runs are unique per
    task and instant)."""
    while True:
        due_at = utc_seconds(utcnow()) - timedelta(seconds=1)
        if previous is None or due_at > previous:
            return due_at
        time.sleep(0.2)


def _read(pid: int, runs: int, settle: float) -> Reading:
    time.sleep(settle)
    pss, rss = tree_memory(pid)
    reading = Reading(runs, rss / 1024, pss / 1024)
    log(f"after {runs:,} runs: RSS {reading.rss_mib:,.1f} MiB, PSS {reading.pss_mib:,.1f} MiB")
    return reading


def _waves(total: int, wave: int, home: Path) -> tuple[list[Reading], float]:
    """A reading after each wave (the first and the last after ``SETTLE_S`` idle), and the
    seconds the waves took."""
    with redis_prefix() as prefix, database() as url:
        settings = make_settings(url, prefix, home)
        app.use_settings(settings)
        publish = run_publisher(app, per_message=settings.runs_per_message)
        # Daily at a time of day 12 h away: no firing of their own falls in the waves.
        loaded = load_tasks(url, wave, start=utcnow() + timedelta(hours=12), kinds="mixed")
        worker = start_celery(
            "worker-memory",
            "personal_assistant.workers.celery_app",
            worker_args(worker_queues(), f"bench-memory-{token()}"),
            process_env(url, prefix, home),
            home,
        )
        readings: list[Reading] = []
        done, due_at = 0, None
        began = time.perf_counter()
        try:
            while done < total:
                size = FIRST if done == 0 else min(wave, total - done)
                due_at = _next_second(due_at)
                _make_due(url, loaded.first_id, size, due_at)
                asyncio.run(claim_until_empty(url, settings, publish, utcnow()))
                wait_until(
                    functools.partial(_wave_ended, url, due_at, size),
                    timeout=max(120.0, size / 50),
                    what=f"the runs {done:,}-{done + size:,}",
                    interval=0.25,
                    watch=[worker],
                )
                done += size
                measured = done == FIRST or done >= total  # else a reading for the notes
                readings.append(_read(worker.proc.pid, done, SETTLE_S if measured else 0.0))
            seconds = time.perf_counter() - began
            ok = _succeeded(url)
        finally:
            stop(worker)
        if ok != total:
            raise RuntimeError(
                f"{ok:,} of {total:,} runs succeeded; the worker log ends:\n{worker.tail()}"
            )
        return readings, seconds


def measure(quick: bool) -> Figure:
    total, wave = (QUICK_TOTAL, QUICK_WAVE) if quick else (TOTAL, WAVE)
    with tempfile.TemporaryDirectory(prefix="pa-bench-memory-") as tmp:
        readings, seconds = _waves(total, wave, Path(tmp))
    first, last = readings[0], readings[-1]
    ratio = last.rss_mib / first.rss_mib
    rows = (
        Row(f"worker RSS after {first.runs:,} runs", first.rss_mib, "MiB"),
        Row(f"worker RSS after {last.runs:,} runs", last.rss_mib, "MiB"),
        Row(
            f"RSS after {last.runs:,} / after {first.runs:,} runs",
            ratio,
            "x",
            target=f"<= {GOAL:g}x",
            met=ratio <= GOAL,
        ),
        Row(f"worker PSS after {first.runs:,} runs", first.pss_mib, "MiB"),
        Row(f"worker PSS after {last.runs:,} runs", last.pss_mib, "MiB"),
    )
    notes = (
        f"{total:,} runs in {seconds:,.0f} s ({total / seconds:,.0f} runs/s, claims, waits and "
        f"the readings' {SETTLE_S:g} s pauses included); growth "
        f"{last.rss_mib - first.rss_mib:+,.1f} MiB RSS, {last.pss_mib - first.pss_mib:+,.1f} MiB "
        f"PSS ({1024 * (last.rss_mib - first.rss_mib) / (last.runs - first.runs):+,.2f} KiB "
        "RSS per run).",
        "RSS after each wave (no idle pause but the first and last): "
        + ", ".join(f"{r.runs:,} runs {r.rss_mib:,.1f} MiB" for r in readings)
        + ".",
    )
    return Figure(
        KEY,
        TITLE,
        rows,
        method=METHOD.format(total=total, goal=GOAL, first=FIRST, wave=wave, settle=SETTLE_S),
        notes=notes,
        params={"runs": total, "first_reading_after": FIRST, "wave": wave, "settle_s": SETTLE_S},
    )
