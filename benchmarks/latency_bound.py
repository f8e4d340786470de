"""Figure: runs/s and memory of one worker process when the model answers after 2 s.

A local chat-completions server (``benchmarks/slow_chat_server.py``, a child process) answers
every request after ``DELAY`` seconds. The project's worker runs the agent calls of many runs
concurrently on its event loop, measured at several ``MAX_IN_FLIGHT`` levels; beside it,
Celery's prefork pool makes the same calls one run per task, one task per child process at a
time.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks import prefork_app
from benchmarks.claim_rate import claim_until_empty
from benchmarks.fixtures import (
    PG_ADMIN_URL,
    RUNS_POLL_S,
    database,
    load_tasks,
    log,
    make_settings,
    process_env,
    redis_prefix,
    results_done,
    scalar,
    start_celery,
    stop,
    token,
    utc_seconds,
    vacuum,
    wait_until,
    worker_args,
)
from benchmarks.process_tree import PeakMemory, tree_cpu_seconds, tree_memory
from benchmarks.report import Figure, Row
from benchmarks.rounds import median_round

# Re-exported ("as"): benchmarks/fairness.py imports the server from here.
from benchmarks.slow_chat_server import SlowServer as SlowServer
from benchmarks.slow_chat_server import slow_server as slow_server
from benchmarks.waves import Waves, waves_of
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import run_publisher
from personal_assistant.workers.routing import worker_queues

KEY = "latency"
TITLE = "Latency-bound runs/s (model answers after 2 s)"
DELAY = 2.0
LEVELS = (500, 1_000, 2_000)  # MAX_IN_FLIGHT of the project worker, one phase each
QUICK_LEVELS = (500, 2_000)
TARGET_LEVEL = 2_000  # "2,000 runs in flight in one worker process"
WAVES = 6  # runs per level: WAVES x the level (QUICK_WAVES with --quick)
QUICK_WAVES = 2
SPARE_THREADS = 3  # Celery threads beyond those whose messages fill MAX_IN_FLIGHT
SHARE_GOAL = 90.0  # per cent of the ceiling (in flight / DELAY)
PSS_PER_RUN_GOAL = 0.1  # MiB of PSS per run in flight
PREFORK = 8  # prefork children
#: Phases at the target level; the figure is the median one. Single phases of the same code
#: gave from 84.1 to 90.5 % of the ceiling from one run of the benchmark to the next.
ROUNDS = 3
WARMUP = 20

METHOD = """\
**What it means.** When the model is slow (here every answer takes {delay:g} s), a worker's
throughput is set by how many agent calls it keeps in flight, not by CPU: its ceiling is
`MAX_IN_FLIGHT / {delay:g} s`. The project's worker runs each message's runs concurrently on
its event loop, up to `MAX_IN_FLIGHT` per process; Celery's prefork pool makes one call per
child process at a time. Targets: {target:,} runs in flight in one worker process, at
>= {share:g} % of the ceiling, with <= {pss_goal:g} MiB of PSS per run in flight.

**How it was measured.** A local chat-completions server on loopback
(`benchmarks/slow_chat_server.py`: asyncio, HTTP/1.1 keep-alive, a child process) answers every
request after {delay:g} s with a valid completion and usage, and counts the requests it holds
at once. *Project worker*, once per level `MAX_IN_FLIGHT` in {levels}: {waves} x the level
daily tasks due in the same second (one database for all levels, each level's tasks due at a
second of their own); a new `celery -A personal_assistant.workers.celery_app worker` per level
with the routed queues, the threads
pool with `WORKER_CONCURRENCY` = level / `RUNS_PER_MESSAGE` ({per_message}) + {spare} (enough
messages at once to fill the level), `AGENT=openai` with `AGENT_BASE_URL` at the server,
warmed up with {warmup} runs. The benchmark claims the due tasks with `TaskScheduler` and the
real `publish_runs` and polls the database once a second until every run is `succeeded`;
rate = runs / (last `finished_at` - start of the claim), and its share of the ceiling =
rate / (level / {delay:g} s). *Prefork* (at one size): a Celery app of the benchmark's own
(`benchmarks/prefork_app.py`, the project's `celery_config`: prefetch 1, `acks_late`, Redis
result backend) whose task makes the same request (same prompt, same reply parsing)
synchronously with `httpx`; one worker with
`-P prefork -c {prefork}`, warmed up, then {n_prefork:,} tasks sent with `producer.batch()`;
rate = tasks / (last result's `date_done` - start of sending). The prefork tasks only call the
server; the project's runs also claim, store results and write notifications in PostgreSQL.
Memory: the proportional set size (PSS, `/proc/<pid>/smaps_rollup`) summed over the worker
process and all its children, sampled every 0.1 s; the peak is reported. PSS counts a page
shared by the prefork children once, split between them. *PSS per run in flight* = (peak PSS
while measured - PSS of the same worker warmed up and idle, read just before the claim) /
level: what holding the runs costs, not the interpreter and libraries every worker loads.
*Waves* (notes): the runs in the order they started, `level` at a time, each taking the slot of
the run `level` places before it; each wave ends at its last `finished_at`, ideally {delay:g} s
after the one before. What each wave took beyond {delay:g} s adds up to the time lost against
the ceiling (`benchmarks/waves.py`): wave 0's holds what the first burst costs once (the claim
of all the due tasks, new connections), the later waves' what a turn costs. The target level
runs {rounds} phases, each with a new worker and tasks of its own; its rows give the median
phase, its note every phase's share.
"""


# --- The phases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    runs: int
    seconds: float
    peak_in_flight: int
    peak_pss_mib: float
    peak_rss_mib: float
    requests: int
    cpu_s: float  # CPU the worker's process tree used while measured
    mean_run_s: float | None = None  # mean finished_at - started_at (project worker only)
    idle_pss_mib: float = 0.0  # the warmed-up worker before the claim (project worker only)
    waves: Waves | None = None  # where the time beyond the ceiling went (project worker only)

    @property
    def rate(self) -> float:
        return self.runs / self.seconds


def _succeeded(url: str, at: datetime, finished: bool = False) -> int:
    """Runs scheduled for ``at`` that succeeded (or, ``finished``, that ended at all)."""
    ended = "state NOT IN ('queued', 'running')" if finished else "state = 'succeeded'"
    found = scalar(
        url, f"SELECT count(*) FROM task_runs WHERE scheduled_for = %(at)s AND {ended}", {"at": at}
    )
    return int(str(found))


def _finished(url: str, at: datetime) -> list[tuple[datetime, datetime]]:
    """``(started_at, finished_at)`` of each of ``at``'s runs."""
    with psycopg.connect(url) as conn:
        found = conn.execute(
            b"SELECT started_at, finished_at FROM task_runs WHERE scheduled_for = %(at)s",
            {"at": at},
        ).fetchall()
    return [(started, finished) for started, finished in found]


def threads_for(level: int, per_message: int) -> int:
    """Celery threads whose messages fill ``level`` runs in flight, and a few spare."""
    return math.ceil(level / per_message) + SPARE_THREADS


def _worker_env(settings: Settings, home: Path, server: SlowServer, level: int) -> dict[str, str]:
    env = process_env(settings.database_url, settings.redis_key_prefix, home)
    env.update(
        AGENT="openai",
        AGENT_BASE_URL=server.base_url,
        AGENT_MODEL=prefork_app.MODEL,
        AGENT_TIMEOUT="30",
        RUN_TIMEOUT="60",
        MAX_IN_FLIGHT=str(level),
        WORKER_CONCURRENCY=str(threads_for(level, settings.runs_per_message)),
    )
    return env


def _project_worker(settings: Settings, level: int, n: int, home: Path, srv: SlowServer) -> Phase:
    """One worker with ``MAX_IN_FLIGHT=level`` runs ``n`` runs due at once (a database shared
    by the levels: each level's tasks are due at a second of their own, then a day later)."""
    url = settings.database_url
    warm_at = utc_seconds(utcnow()) - timedelta(minutes=2)
    due_at = warm_at + timedelta(minutes=1)
    load_tasks(url, WARMUP, start=warm_at, kinds="mixed")
    load_tasks(url, n, start=due_at, kinds="mixed")
    vacuum(url, "ai_tasks", "users", "task_runs")
    publish = run_publisher(app, per_message=settings.runs_per_message)
    worker = start_celery(
        f"worker-latency-{level}",
        "personal_assistant.workers.celery_app",
        worker_args(worker_queues(), f"bench-latency-{token()}"),
        _worker_env(settings, home, srv, level),
        home,
    )
    memory = PeakMemory(worker.proc.pid)
    try:
        asyncio.run(claim_until_empty(url, settings, publish, warm_at + timedelta(seconds=1)))
        waited = wait_until(
            lambda: _succeeded(url, warm_at) >= WARMUP,
            timeout=90,
            what="the warm-up runs",
            watch=[worker],
        )
        log(f"worker up and warm ({WARMUP} runs through the slow server) after {waited:.1f} s")
        srv.stats(reset=True)
        idle_pss = tree_memory(worker.proc.pid)[0]
        cpu = tree_cpu_seconds(worker.proc.pid)
        started = datetime.now(UTC)
        claimed = asyncio.run(claim_until_empty(url, settings, publish, utcnow()))
        log(f"claimed {claimed.tasks:,} tasks in {claimed.seconds:.1f} s; waiting for the runs")
        wait_until(
            lambda: _succeeded(url, due_at, finished=True) >= n,
            timeout=max(120.0, 4 * DELAY * n / level),
            what="all runs",
            interval=RUNS_POLL_S,
            watch=[worker],
        )
        cpu = tree_cpu_seconds(worker.proc.pid) - cpu
    finally:
        memory.stop()
        stop(worker)
    stats = srv.stats()
    ok = _succeeded(url, due_at)
    if ok != n:
        raise RuntimeError(f"{ok} of {n} runs succeeded; the worker log ends:\n{worker.tail()}")
    runs = _finished(url, due_at)
    shape = waves_of(runs, start=started, level=level, delay=DELAY)
    seconds = max(shape.ends)  # the last finish of all
    mean_run = sum((finished - began).total_seconds() for began, finished in runs) / len(runs)
    log(
        f"MAX_IN_FLIGHT={level:,}: {n:,} runs in {seconds:.1f} s ({n / seconds:,.0f}/s), "
        f"{stats}, PSS idle {idle_pss / 1024:,.0f} MiB, peak {memory.peak_pss / 1024:,.0f} MiB"
    )
    return Phase(
        n,
        seconds,
        stats["peak_in_flight"],
        memory.peak_pss / 1024,
        memory.peak_rss / 1024,
        stats["requests"],
        cpu,
        mean_run,
        idle_pss / 1024,
        shape,
    )


def _send_calls(count: int) -> list[str]:
    task = prefork_app.app.tasks[prefork_app.CALL]
    with prefork_app.app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        return [task.apply_async((i,), producer=producer).id for i in range(count)]


def _prefork(n: int, home: Path, server: SlowServer) -> Phase:
    with redis_prefix() as prefix:
        settings = make_settings(PG_ADMIN_URL, prefix, home)
        prefork_app.app.use_settings(settings)
        env = process_env(PG_ADMIN_URL, prefix, home)
        env["AGENT_BASE_URL"] = server.base_url
        worker = start_celery(
            "worker-prefork",
            "benchmarks.prefork_app",
            [
                *worker_args(prefork_app.QUEUE, f"bench-prefork-{token()}"),
                *("-P", "prefork", "-c", str(PREFORK)),
            ],
            env,
            home,
        )
        memory = PeakMemory(worker.proc.pid)
        try:
            warm = _send_calls(PREFORK)
            waited = wait_until(
                lambda: len(results_done(prefix, warm)) == len(warm),
                timeout=90,
                what="the prefork warm-up calls",
                watch=[worker],
            )
            log(f"prefork worker up and warm ({PREFORK} calls) after {waited:.1f} s")
            server.stats(reset=True)
            cpu = tree_cpu_seconds(worker.proc.pid)
            started = datetime.now(UTC)
            ids = _send_calls(n)
            wait_until(
                lambda: len(results_done(prefix, ids)) == n,
                timeout=max(120.0, 3 * DELAY * n / PREFORK),
                what="every prefork call",
                interval=0.25,
                watch=[worker],
            )
            done = results_done(prefix, ids)
            cpu = tree_cpu_seconds(worker.proc.pid) - cpu
        finally:
            memory.stop()
            stop(worker)
        stats = server.stats()
        seconds = (max(done) - started).total_seconds()
        log(f"prefork -c {PREFORK}: {n:,} calls in {seconds:.1f} s ({n / seconds:,.1f}/s), {stats}")
        return Phase(
            n,
            seconds,
            stats["peak_in_flight"],
            memory.peak_pss / 1024,
            memory.peak_rss / 1024,
            stats["requests"],
            cpu,
        )


def _level_rows(level: int, phase: Phase) -> tuple[Row, ...]:
    ceiling = level / DELAY
    share = 100 * phase.rate / ceiling
    per_run = (phase.peak_pss_mib - phase.idle_pss_mib) / level
    aimed = level == TARGET_LEVEL
    name = f"project worker, MAX_IN_FLIGHT={level:,}"
    return (
        Row(f"{name}: {phase.runs:,} runs", phase.rate, "runs/s", f"ceiling {ceiling:,.0f}"),
        Row(
            f"{name}: share of the ceiling ({level:,} / {DELAY:g} s)",
            share,
            "%",
            f">= {SHARE_GOAL:g} %" if aimed else "",
            share >= SHARE_GOAL if aimed else None,
        ),
        Row(
            f"{name}: peak runs in flight (seen by the server)",
            phase.peak_in_flight,
            "runs",
            f">= {level:,}" if aimed else "",
            phase.peak_in_flight >= level if aimed else None,
        ),
        Row(f"{name}: peak memory (PSS, process tree)", phase.peak_pss_mib, "MiB"),
        Row(
            f"{name}: PSS per run in flight ((peak - idle) / {level:,})",
            per_run,
            "MiB/run",
            f"<= {PSS_PER_RUN_GOAL:g} MiB" if aimed else "",
            per_run <= PSS_PER_RUN_GOAL if aimed else None,
        ),
    )


def _level_note(level: int, phase: Phase) -> str:
    shortfall = f"; {phase.waves.note()}" if phase.waves is not None else ""
    return (
        f"MAX_IN_FLIGHT={level:,}: PSS idle (warmed up) {phase.idle_pss_mib:,.0f} MiB, peak "
        f"{phase.peak_pss_mib:,.0f} MiB ({phase.peak_pss_mib / level:.3f} MiB per run in flight "
        f"counting the whole process), peak RSS {phase.peak_rss_mib:,.0f} MiB; mean run "
        f"{phase.mean_run_s or 0.0:.2f} s (the server answers in {DELAY:g} s); worker CPU "
        f"{phase.cpu_s:.1f} s ({1e3 * phase.cpu_s / phase.runs:.2f} ms per run); the server "
        f"answered {phase.requests:,} requests for {phase.runs:,} runs{shortfall}."
    )


def measure(quick: bool) -> Figure:
    levels = QUICK_LEVELS if quick else LEVELS
    waves = QUICK_WAVES if quick else WAVES
    n_prefork = 2 * PREFORK if quick else 8 * PREFORK
    rounds = 1 if quick else ROUNDS
    ours: dict[int, Phase] = {}
    shares: dict[int, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="pa-bench-latency-") as tmp,
        slow_server(DELAY) as srv,
    ):
        home = Path(tmp)
        with redis_prefix() as prefix, database() as url:
            settings = make_settings(url, prefix, home)
            app.use_settings(settings)
            for level in levels:
                phases = [
                    _project_worker(settings, level, waves * level, home, srv)
                    for _ in range(rounds if level == TARGET_LEVEL else 1)
                ]
                ours[level] = median_round(phases, lambda p: p.seconds)
                if len(phases) > 1:
                    shares[level] = [100 * p.rate / (level / DELAY) for p in phases]
        prefork = _prefork(n_prefork, home, srv)
    per_message = make_settings(PG_ADMIN_URL, "bench_unused:").runs_per_message
    base = levels[0]
    rows = (
        *(row for level in levels for row in _level_rows(level, ours[level])),
        Row(f"Celery prefork -c {PREFORK}, {n_prefork:,} calls", prefork.rate, "runs/s"),
        Row("prefork: peak calls in flight", prefork.peak_in_flight, "runs"),
        Row(
            f"prefork: peak memory (PSS, parent + {PREFORK} children)",
            prefork.peak_pss_mib,
            "MiB",
        ),
        Row(
            f"project worker (MAX_IN_FLIGHT={base:,}) / prefork, runs/s",
            ours[base].rate / prefork.rate,
            "x",
        ),
        Row(
            f"project worker (MAX_IN_FLIGHT={base:,}) / prefork, runs/s per MiB",
            (ours[base].rate / ours[base].peak_pss_mib) / (prefork.rate / prefork.peak_pss_mib),
            "x",
        ),
    )
    notes = (
        *(
            f"MAX_IN_FLIGHT={level:,}, share of the ceiling by phase: "
            + ", ".join(f"{share:.1f} %" for share in every)
            + "; the median phase is the one in the rows and the next note."
            for level, every in shares.items()
        ),
        *(_level_note(level, ours[level]) for level in levels),
        f"Prefork: peak RSS summed over the process tree (shared pages counted in every process) "
        f"{prefork.peak_rss_mib:,.0f} MiB; worker CPU {prefork.cpu_s:.1f} s "
        f"({1e3 * prefork.cpu_s / prefork.runs:.1f} ms per call); the server answered "
        f"{prefork.requests:,} requests for {prefork.runs:,} calls.",
        f"Prefork's ceiling is {PREFORK} / {DELAY:g} s = {PREFORK / DELAY:g} calls/s; more "
        "children raise it only by as many processes, each with its own memory.",
    )
    return Figure(
        KEY,
        TITLE,
        rows,
        method=METHOD.format(
            delay=DELAY,
            target=TARGET_LEVEL,
            share=SHARE_GOAL,
            pss_goal=PSS_PER_RUN_GOAL,
            levels=", ".join(f"{level:,}" for level in levels),
            waves=waves,
            per_message=per_message,
            spare=SPARE_THREADS,
            warmup=WARMUP,
            prefork=PREFORK,
            n_prefork=n_prefork,
            rounds=rounds,
        ),
        notes=notes,
        params={
            "delay_s": DELAY,
            "levels": list(levels),
            "runs_per_level": [waves * level for level in levels],
            "worker_concurrency": [threads_for(level, per_message) for level in levels],
            "prefork_calls": n_prefork,
            "runs_per_message": per_message,
            "prefork_concurrency": PREFORK,
        },
        series={
            "inflight_memory": {
                "in_flight": list(levels),
                "pss_mib": [round(ours[level].peak_pss_mib, 1) for level in levels],
                "runs_per_s": [round(ours[level].rate, 1) for level in levels],
            }
        },
    )
