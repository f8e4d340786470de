"""Figure 4: how late runs start and finish after the instant they were due.

Real processes: one ``celery beat`` (the project's ``DatabaseScheduler``, which ticks the
``TaskScheduler``) and one ``celery worker``, on the benchmark's database and Redis prefix, with
a million active tasks in the table that are not due meanwhile. Two loads are loaded while both
run: a short one on whole seconds, then a sustained one (1,000 firings a second for a minute,
each task at its own instant). Lateness comes from the database: ``started_at -
scheduled_for`` and ``finished_at - scheduled_for`` of each run.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.fixtures import (
    Service,
    database,
    execute,
    load_tasks,
    load_tasks_at_rate,
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
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.workers.routing import worker_queues

KEY = "lateness"
TITLE = "Firing lateness"
TARGET_BURST_P99_S = 1.0
TARGET_SUSTAINED_P99_S = 0.1
WARMUP = 20
IDLE_S = 10.0
LEAD_S = 4.0  # the first task of a load falls due this long after the load began
MACHINE = "machine busy (all cores = 100 %)"
MAX_SAMPLES = 20_000  # per series in the chart (series["lateness_ms"])
APP = "personal_assistant.workers.celery_app"


@dataclass(frozen=True)
class Sizes:
    background: int  # active tasks not due during the measurement
    burst: int  # tasks of the short load, on whole seconds
    burst_spread_s: float
    rate: float  # firings per second of the sustained load
    sustained_s: float  # how long the sustained load lasts


FULL = Sizes(1_000_000, 2_000, 20.0, 1_000.0, 60.0)
QUICK = Sizes(10_000, 300, 5.0, 200.0, 10.0)

METHOD = """\
**What it means.** How long after its due instant a run starts (the worker's claim sets
`started_at`) and finishes, with the real processes: beat's `DatabaseScheduler` ticks
`TaskScheduler` (sleeping until the next due task, at most `SCHEDULER_TICK_SECONDS={tick}`),
publishes, and the worker runs the offline agent. Targets: start lateness p99 <= {burst_target:,.0f}
ms for the short load; <= {sustained_target:,.0f} ms with {rate:,.0f} firings per second
sustained for {seconds:.0f} s among {background:,} active tasks.

**How it was measured.** {background:,} active daily tasks, due hours later, are loaded first
(then `VACUUM (ANALYZE)`) and stay in the table throughout. One `celery beat` and one `celery
worker` (routed queues, threads pool, default concurrency) as subprocesses on the benchmark's
database and Redis prefix. Once both are up (a warm-up of {warmup} tasks due at once has run end
to end), the CPU time both processes use over {idle_s:.0f} s with nothing due is read from
`/proc` (the *idle CPU*: beat's ticks, the worker's polling). Then two loads, each inserted in
one transaction while both processes run, the first due about {lead:.0f} s after the insert
began;
each is waited for until every run has succeeded:

- *Short load*: {burst:,} daily tasks due over {burst_spread:.0f} s, about {burst_per_s:,.0f} per
  second on whole seconds (as `load_tasks` sets them: its daily schedules have whole-second
  times).
- *Sustained load*: {sustained_n:,} daily tasks, the i-th due at `T + i / {rate:,.0f}` s, each at
  its own instant (`load_tasks_at_rate` keeps the fraction of a second in `next_run_at`; the
  schedule's time of day is that instant's whole second, so the next firing is a day later):
  {rate:,.0f} firings per second, evenly, for {seconds:.0f} s. The *runs started per second*
  are the runs whose `started_at` falls in `[T, T + {seconds:.0f} s)`, divided by {seconds:.0f}.
  The load average is the machine's 1-minute figure read at `T + {seconds:.0f} s` (it covers
  roughly the last minute, and includes everything else running on the machine). Over the
  {seconds:.0f} s, CPU time is read from `/proc`: of beat, of the worker, of the PostgreSQL
  backends connected to the benchmark's database (those alive at its end), and how busy
  the machine's cores were (`/proc/stat`, anyone's work).

The percentiles of `started_at - scheduled_for` and `finished_at - scheduled_for` are read from
the database (`percentile_cont`) over each load's runs. The notes split the sustained load's
lateness: `queued_at - scheduled_for` is the scheduler's share (`queued_at` is the `now` of the
claim that created the run); `started_at - queued_at` covers the publish, the broker and the
wait for the worker's claim; `finished_at - started_at` is the run itself and the write of its
outcome. The number of distinct `queued_at` (claims by beat) and `started_at` (claims by the
worker) says how the runs were batched.
"""

_LATENESS = b"""
SELECT
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for)),
    max(extract(epoch FROM started_at - scheduled_for)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - scheduled_for)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - scheduled_for)),
    max(extract(epoch FROM finished_at - scheduled_for)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM queued_at - scheduled_for)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM queued_at - scheduled_for)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)),
    count(DISTINCT queued_at),
    count(DISTINCT started_at),
    count(*) FILTER (WHERE started_at < %(until)s),
    count(*)
FROM task_runs
WHERE scheduled_for >= %(since)s AND scheduled_for < %(until)s AND state = 'succeeded'
"""

_PER_SECOND = b"""
SELECT floor(extract(epoch FROM started_at - %(since)s))::int AS second, count(*)
FROM task_runs
WHERE scheduled_for >= %(since)s AND scheduled_for < %(until)s AND state = 'succeeded'
  AND started_at >= %(since)s AND started_at < %(until)s
GROUP BY 1
"""

_SAMPLES = b"""
SELECT 1000 * extract(epoch FROM started_at - scheduled_for),
       1000 * extract(epoch FROM finished_at - scheduled_for)
FROM task_runs
WHERE scheduled_for >= %(since)s AND scheduled_for < %(until)s AND state = 'succeeded'
ORDER BY scheduled_for, id
"""


@dataclass(frozen=True)
class Lateness:
    """One load's lateness (seconds) and batching, read from its runs."""

    start_p50: float
    start_p99: float
    start_max: float
    finish_p50: float
    finish_p99: float
    finish_max: float
    claim_p50: float
    claim_p99: float
    to_start_p50: float
    to_start_p99: float
    run_p50: float
    run_p99: float
    beat_claims: int
    worker_claims: int
    started_in_window: int
    count: int


@dataclass(frozen=True)
class Sustained:
    lateness: Lateness
    per_second: dict[int, int]  # runs started in each whole second of the window
    load_before: float
    load_after: float
    cpu: dict[str, float]  # percent of one core over the window (the machine: of all cores)
    samples: dict[str, list[float]]


def _lateness(url: str, since: datetime, until: datetime) -> Lateness:
    with psycopg.connect(url) as conn:
        row = conn.execute(_LATENESS, {"since": since, "until": until}).fetchone()
    assert row is not None and row[-1], "no succeeded runs in the window"
    seconds = [float(v) for v in row[:12]]
    counts = [int(v) for v in row[12:]]
    return Lateness(*seconds[:12], *counts[:4])


def _succeeded(url: str, since: datetime) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            b"SELECT count(*) FROM task_runs WHERE scheduled_for >= %s AND state = 'succeeded'",
            (since,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _cpu(services: list[Service]) -> dict[str, float]:
    return {s.name: s.cpu_seconds() for s in services}


def _cpu_since(
    services: list[Service], before: dict[str, float], seconds: float
) -> dict[str, float]:
    """Percent of one core each service used since ``before`` was read, ``seconds`` ago."""
    return {s.name: 100 * (s.cpu_seconds() - before[s.name]) / seconds for s in services}


_BACKENDS = b"SELECT pid FROM pg_stat_activity WHERE datname = current_database()"


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of any process, from /proc; None once it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_jiffies() -> tuple[int, int]:
    """(all, idle) CPU time of the machine so far, from /proc/stat (idle includes iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]


@dataclass(frozen=True)
class _CpuSnapshot:
    services: dict[str, float]
    backends: dict[int, float]  # the benchmark database's PostgreSQL backends
    machine: tuple[int, int]


def _cpu_snapshot(url: str, services: list[Service]) -> _CpuSnapshot:
    with psycopg.connect(url) as conn:
        pids = [int(r[0]) for r in conn.execute(_BACKENDS).fetchall()]
    backends = {pid: cpu for pid in pids if (cpu := _process_cpu(pid)) is not None}
    return _CpuSnapshot(_cpu(services), backends, _machine_jiffies())


def _cpu_over(
    url: str, services: list[Service], before: _CpuSnapshot, seconds: float
) -> dict[str, float]:
    """Percent of one core used since ``before`` by each service and by the database's
    backends (those alive at the end; a backend that ended meanwhile is missed), and percent
    of all the machine's cores busy (anyone's work)."""
    after = _cpu_snapshot(url, services)
    usage = _cpu_since(services, before.services, seconds)
    backends = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
    usage["PostgreSQL"] = 100 * backends / seconds
    total, idle = (a - b for a, b in zip(after.machine, before.machine, strict=True))
    usage[MACHINE] = 100 * (1 - idle / total) if total else 0.0
    return usage


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - utcnow()).total_seconds()))


def _wait_done(url: str, since: datetime, n: int, services: list[Service], timeout: float) -> None:
    wait_until(
        lambda: _succeeded(url, since) >= n,
        timeout=timeout,
        what=f"{n:,} runs to succeed",
        interval=0.5,
        watch=services,
    )


def _burst(url: str, sizes: Sizes, services: list[Service]) -> tuple[datetime, datetime]:
    """The short load on whole seconds; returns its window of due instants."""
    start = utc_seconds(utcnow()) + timedelta(seconds=LEAD_S + 1)
    loaded = load_tasks(url, sizes.burst, start=start, spread_s=sizes.burst_spread_s)
    log(
        f"short load: {sizes.burst:,} tasks due from {start:%H:%M:%S} over "
        f"{sizes.burst_spread_s:.0f} s (insert took {loaded.seconds:.2f} s)"
    )
    _wait_done(url, start, sizes.burst, services, LEAD_S + sizes.burst_spread_s + 90)
    return start, start + timedelta(seconds=sizes.burst_spread_s + 1)


def _sustained(url: str, sizes: Sizes, services: list[Service]) -> Sustained:
    """The sustained load: ``rate`` firings a second, each at its own instant."""
    n = round(sizes.rate * sizes.sustained_s)
    start = utcnow() + timedelta(seconds=LEAD_S)
    until = start + timedelta(seconds=sizes.sustained_s)
    loaded = load_tasks_at_rate(url, n, start=start, per_second=sizes.rate)
    log(
        f"sustained load: {n:,} tasks due from {start:%H:%M:%S.%f} at {sizes.rate:,.0f}/s "
        f"(insert took {loaded.seconds:.2f} s)"
    )
    if utcnow() >= start:
        log("the insert ended after the first task was due: the first runs start late")
    _sleep_until(start)
    load_before, cpu_before = os.getloadavg()[0], _cpu_snapshot(url, services)
    _sleep_until(until)
    load_after = os.getloadavg()[0]
    cpu = _cpu_over(url, services, cpu_before, sizes.sustained_s)
    log(f"the minute is over: load average {load_before:.2f} -> {load_after:.2f}")
    _wait_done(url, start, n, services, 180)
    params = {"since": start, "until": until}
    with psycopg.connect(url) as conn:
        per_second = dict(conn.execute(_PER_SECOND, params).fetchall())
        rows = conn.execute(_SAMPLES, params).fetchall()
    step = max(1, math.ceil(len(rows) / MAX_SAMPLES))
    samples = {
        "start": [round(float(r[0]), 3) for r in rows[::step]],
        "finish": [round(float(r[1]), 3) for r in rows[::step]],
    }
    late = _lateness(url, start, until)
    return Sustained(late, per_second, load_before, load_after, cpu, samples)


def _measure(sizes: Sizes, url: str, env: dict[str, str], home: Path) -> _Measured:
    """Start beat and the worker on a loaded database, then measure idle, short and sustained."""
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
        idle_s = IDLE_S if sizes is FULL else 3.0
        before = _cpu(services)
        time.sleep(idle_s)
        idle = _cpu_since(services, before, idle_s)
        log("idle CPU: " + ", ".join(f"{k} {v:.1f} %" for k, v in idle.items()))
        burst = _lateness(url, *_burst(url, sizes, services))
        log(
            f"short load: start lateness p50 {burst.start_p50:.3f} s, p99 "
            f"{burst.start_p99:.3f} s over {burst.count:,} runs"
        )
        sustained = _sustained(url, sizes, services)
    finally:
        for service in services:
            stop(service)
    late = sustained.lateness
    log(
        f"sustained load: start lateness p50 {late.start_p50:.3f} s, p99 {late.start_p99:.3f} s, "
        f"finish p99 {late.finish_p99:.3f} s over {late.count:,} runs"
    )
    return _Measured(idle, idle_s, burst, sustained)


@dataclass(frozen=True)
class _Measured:
    idle_cpu: dict[str, float]
    idle_s: float
    burst: Lateness
    sustained: Sustained


def measure(quick: bool) -> Figure:
    sizes = QUICK if quick else FULL
    with (
        tempfile.TemporaryDirectory(prefix="pa-bench-late-") as tmp,
        redis_prefix() as prefix,
        database() as url,
    ):
        home = Path(tmp)
        settings = make_settings(url, prefix, home)
        bg = load_tasks(url, sizes.background, start=utcnow() + timedelta(hours=2), spread_s=3600)
        vacuum(url, "ai_tasks", "users")
        execute(url, "CHECKPOINT")  # write the load out now, not during the measurement
        log(f"loaded {bg.count:,} active tasks due later in {bg.seconds:.1f} s")
        measured = _measure(sizes, url, process_env(url, prefix, home), home)
    return _figure(sizes, measured, settings.tick_seconds)


def _figure(sizes: Sizes, m: _Measured, tick: float) -> Figure:
    burst, s = m.burst, m.sustained
    late = s.lateness
    window = int(sizes.sustained_s)
    slowest = min(s.per_second.get(k, 0) for k in range(window))
    rate = late.started_in_window / sizes.sustained_s
    ms = 1000.0
    rows = (
        Row(
            "short load: start lateness p50 (started_at - scheduled_for)",
            ms * burst.start_p50,
            "ms",
        ),
        Row(
            "short load: start lateness p99",
            ms * burst.start_p99,
            "ms",
            target=f"<= {ms * TARGET_BURST_P99_S:,.0f} ms",
            met=burst.start_p99 <= TARGET_BURST_P99_S,
        ),
        Row(
            "short load: finish lateness p50 (finished_at - scheduled_for)",
            ms * burst.finish_p50,
            "ms",
        ),
        Row("short load: finish lateness p99", ms * burst.finish_p99, "ms"),
        Row(f"sustained {sizes.rate:,.0f}/s: start lateness p50", ms * late.start_p50, "ms"),
        Row(
            f"sustained {sizes.rate:,.0f}/s: start lateness p99",
            ms * late.start_p99,
            "ms",
            target=f"<= {ms * TARGET_SUSTAINED_P99_S:,.0f} ms",
            met=late.start_p99 <= TARGET_SUSTAINED_P99_S,
        ),
        Row(f"sustained {sizes.rate:,.0f}/s: finish lateness p50", ms * late.finish_p50, "ms"),
        Row(f"sustained {sizes.rate:,.0f}/s: finish lateness p99", ms * late.finish_p99, "ms"),
        Row(f"sustained {sizes.rate:,.0f}/s: runs started per second", rate, "runs/s"),
        Row(f"sustained {sizes.rate:,.0f}/s: load average (1 min) at its end", s.load_after, ""),
        Row(
            f"sustained {sizes.rate:,.0f}/s: machine CPU busy (all cores, anyone's work)",
            s.cpu[MACHINE],
            "%",
        ),
        *(
            Row(f"idle CPU of {name} (one core = 100 %)", pct, "%")
            for name, pct in m.idle_cpu.items()
        ),
    )
    notes = (
        f"Short load: {burst.count:,} runs; start lateness max {ms * burst.start_max:,.0f} ms, "
        f"finish lateness max {ms * burst.finish_max:,.0f} ms; claim lateness (queued_at - "
        f"scheduled_for) p50 {ms * burst.claim_p50:,.1f} ms, p99 {ms * burst.claim_p99:,.1f} ms.",
        f"Sustained load: {late.count:,} runs, {late.started_in_window:,} of them started within "
        f"the {window} s; the slowest whole second started {slowest:,} runs; start lateness max "
        f"{ms * late.start_max:,.0f} ms, finish lateness max {ms * late.finish_max:,.0f} ms.",
        "Sustained load, where the time goes (p50 / p99): scheduler (queued_at - scheduled_for) "
        f"{ms * late.claim_p50:,.1f} / {ms * late.claim_p99:,.1f} ms; publish, broker and wait "
        f"for the worker's claim (started_at - queued_at) {ms * late.to_start_p50:,.1f} / "
        f"{ms * late.to_start_p99:,.1f} ms; the run and its write (finished_at - started_at) "
        f"{ms * late.run_p50:,.1f} / {ms * late.run_p99:,.1f} ms.",
        f"Sustained load, batching: beat made {late.beat_claims:,} claims "
        f"({late.count / max(1, late.beat_claims):,.1f} runs each), the worker "
        f"{late.worker_claims:,} ({late.count / max(1, late.worker_claims):,.1f} runs each).",
        f"Sustained load: load average (1 min) {s.load_before:.2f} when it began, "
        f"{s.load_after:.2f} at its end; CPU over the {window} s (one core = 100 %): "
        + ", ".join(f"{name} {pct:.0f} %" for name, pct in s.cpu.items())
        + ".",
    )
    return Figure(
        KEY,
        TITLE,
        rows,
        method=METHOD.format(
            background=sizes.background,
            tick=tick,
            burst_target=TARGET_BURST_P99_S * ms,
            sustained_target=TARGET_SUSTAINED_P99_S * ms,
            rate=sizes.rate,
            seconds=sizes.sustained_s,
            warmup=WARMUP,
            idle_s=m.idle_s,
            lead=LEAD_S,
            burst=sizes.burst,
            burst_spread=sizes.burst_spread_s,
            burst_per_s=sizes.burst / sizes.burst_spread_s,
            sustained_n=round(sizes.rate * sizes.sustained_s),
        ),
        notes=notes,
        params={
            "background_tasks": sizes.background,
            "short_load_tasks": sizes.burst,
            "short_load_spread_s": sizes.burst_spread_s,
            "sustained_rate_per_s": sizes.rate,
            "sustained_s": sizes.sustained_s,
            "tick_seconds": tick,
        },
        series={"lateness_ms": s.samples},
    )
