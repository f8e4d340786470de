"""Figure 2: runs per second from due task to stored result, beside bare Celery no-op tasks.

Both phases use one real ``celery worker`` process with the same settings (threads pool and
its default concurrency, prefetch 1, ``acks_late``, Redis result backend), each with its own
Redis key prefix. End to end, the worker is started and warmed up first, and the clock runs
from the start of the scheduler's claim (concurrent with the worker, as in production) to the
last run's ``finished_at``. The no-op baseline is a pure drain of pre-sent messages.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import noop_app
from benchmarks.claim_rate import claim_until_empty
from benchmarks.fixtures import (
    PG_ADMIN_URL,
    database,
    load_tasks,
    log,
    make_settings,
    process_env,
    redis_client,
    redis_prefix,
    results_done,
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
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import run_publisher
from personal_assistant.workers.routing import worker_queues

KEY = "e2e"
TITLE = "End-to-end runs/s"
GOAL = 5.0
WARMUP = 200
#: The most the Prometheus counting may cost end to end, in per cent (issue 13).
METRICS_COST_MAX = 5.0

METHOD = """\
**What it means.** How many runs per second one worker process completes end to end: the
scheduler claims due tasks and publishes their run ids, and the worker claims each batch of
runs (compare-and-set), calls the offline agent, stores results and in-app notification rows.
Beside it, the same worker settings draining bare Celery no-op tasks: Celery's own ceiling on
this machine with these settings. Target: end-to-end at least the no-op rate; long-term goal
{goal:.0f}x the no-op rate.

**How it was measured.** End-to-end: {n:,} daily tasks (half reminders, half periodic tasks
that read their previous results) due in the same second; one
`celery -A personal_assistant.workers.celery_app worker` with the routed queues, the config's
threads pool and concurrency ({concurrency}), prefetch 1, `acks_late`, Redis result backend,
warmed up with {warmup} runs first. The benchmark process then claims the due tasks with
`TaskScheduler.claim_due` and the real `publish_runs` (`RUNS_PER_MESSAGE={per_message}`), and
polls the database until every run is `succeeded`. Rate = runs / (last `finished_at` - start
of the claim). No-op: a Celery app of the benchmark's own (`benchmarks/noop_app.py`) built from
the same `celery_config(settings)`, one worker with the same pool, concurrency, prefetch,
acks and result backend. {n_noop:,} no-op tasks are sent first with `producer.batch()`, then
the worker starts and drains them; rate = tasks / (last result's `date_done` - first
result's `date_done`), so neither the sending nor the worker's start-up is counted. The
end-to-end figure, by contrast, includes the scheduler's claim running concurrently on the
same two cores. Metrics: the end-to-end phase again, after the no-op, with the worker serving
`/metrics` (`METRICS_PORT`) and counting every run, agent call and notification; the cost is
1 - (rate with metrics / rate without), each phase measured once (run-to-run noise is a few
per cent).
"""


@dataclass(frozen=True)
class Phase:
    items: int
    seconds: float
    produce_seconds: float
    messages: int
    detail: str
    worker_cpu: float  # CPU seconds the worker process used for the measured items

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def _run_states(url: str, at: datetime) -> dict[str, int]:
    """The runs of the firings scheduled at ``at``, by state."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            b"SELECT state, count(*) FROM task_runs WHERE scheduled_for = %s GROUP BY state",
            (at,),
        ).fetchall()
    return {str(state): int(count) for state, count in rows}


def _scalar(url: str, query: bytes, *params: object) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _end_to_end(n: int, home: Path, *, metrics: Sequence[bool]) -> list[Phase]:
    """One end-to-end phase per entry of ``metrics`` (True: the worker serves /metrics and
    counts every run), one after the other on one database and key prefix: the project's Celery
    app is configured once per process."""
    with redis_prefix() as prefix, database() as url:
        settings = make_settings(url, prefix, home)
        app.use_settings(settings)
        publish = run_publisher(app, per_message=settings.runs_per_message)
        used: set[datetime] = set()
        return [_phase(n, home, url, prefix, publish, used, metrics=m) for m in metrics]


def _phase(
    n: int,
    home: Path,
    url: str,
    prefix: str,
    publish: Any,
    used: set[datetime],
    *,
    metrics: bool,
) -> Phase:
    """Warm a new worker with ``WARMUP`` runs, then claim ``n`` tasks due in one second and time
    their runs. Each phase's firings fall on seconds of their own (``used``)."""
    settings = app.pa_settings
    while True:
        warm_at = utc_seconds(utcnow()) - timedelta(minutes=2)
        due_at = warm_at + timedelta(minutes=1)
        if not {warm_at, due_at} & used:
            break
        time.sleep(1)
    used |= {warm_at, due_at}
    load_tasks(url, WARMUP, start=warm_at, kinds="mixed")
    load_tasks(url, n, start=due_at, kinds="mixed")
    vacuum(url, "ai_tasks", "users", "task_runs")
    worker = start_celery(
        "worker-e2e",
        "personal_assistant.workers.celery_app",
        worker_args(worker_queues(), f"bench-e2e-{token()}"),
        {**process_env(url, prefix, home), "METRICS_PORT": str(_free_port() if metrics else 0)},
        home,
    )
    try:
        asyncio.run(claim_until_empty(url, settings, publish, warm_at + timedelta(seconds=1)))
        waited = wait_until(
            lambda: _run_states(url, warm_at).get("succeeded", 0) >= WARMUP,
            timeout=90,
            what="the warm-up runs",
            watch=[worker],
        )
        log(f"worker up and warm ({WARMUP} runs) after {waited:.1f} s")
        cpu = worker.cpu_seconds()
        started = datetime.now(UTC)
        claimed = asyncio.run(claim_until_empty(url, settings, publish, utcnow()))
        log(f"claimed {claimed.tasks:,} tasks in {claimed.seconds:.1f} s; waiting for the runs")

        def finished() -> bool:
            states = _run_states(url, due_at)
            return states.get("succeeded", 0) + states.get("failed", 0) >= n

        wait_until(
            finished, timeout=max(120.0, n / 50), what="all runs", interval=0.25, watch=[worker]
        )
        cpu = worker.cpu_seconds() - cpu
    finally:
        stop(worker)
    states = _run_states(url, due_at)
    last = _scalar(url, b"SELECT max(finished_at) FROM task_runs WHERE scheduled_for = %s", due_at)
    first = _scalar(url, b"SELECT min(started_at) FROM task_runs WHERE scheduled_for = %s", due_at)
    notes = _scalar(
        url,
        b"SELECT count(*) FROM notifications WHERE task_id IN "
        b"(SELECT task_id FROM task_runs WHERE scheduled_for = %s)",
        due_at,
    )
    assert isinstance(last, datetime) and isinstance(first, datetime)
    if states.get("succeeded", 0) != n:
        raise RuntimeError(f"runs by state: {states}, expected {n} succeeded")
    seconds = (last - started).total_seconds()
    log(f"end-to-end: {n:,} runs in {seconds:.1f} s ({n / seconds:,.0f}/s), {notes} notifications")
    messages = -(-claimed.runs // settings.runs_per_message)
    return Phase(
        n,
        seconds,
        claimed.seconds,
        messages,
        f"{messages:,} messages, {notes:,} in-app notifications written; first run started "
        f"{(first - started).total_seconds():.2f} s after the claim began, and from then "
        f"{n / (last - first).total_seconds():,.0f} runs/s",
        cpu,
    )


def _send_noops(count: int) -> list[str]:
    task = noop_app.app.tasks[noop_app.NOOP]
    ids: list[str] = []
    with noop_app.app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        for _ in range(count):
            ids.append(task.apply_async(producer=producer).id)
    return ids


def _bare_celery(n: int, home: Path) -> Phase:
    """Drain ``n`` queued no-op tasks: sent first, then the worker starts and empties the queue.

    Sending 20,000 single-task messages costs the sender far more CPU than the scheduler's
    few hundred batched messages, so the sending is kept out of the measurement: the rate is
    counted from the first result to the last one.
    """
    with redis_prefix() as prefix:
        settings = make_settings(PG_ADMIN_URL, prefix, home)
        noop_app.app.use_settings(settings)
        began = time.perf_counter()
        ids = _send_noops(n)
        send_s = time.perf_counter() - began
        log(f"sent {n:,} no-op tasks in {send_s:.1f} s ({n / send_s:,.0f}/s); starting the worker")
        worker = start_celery(
            "worker-noop",
            "benchmarks.noop_app",
            worker_args(noop_app.QUEUE, f"bench-noop-{token()}"),
            process_env(PG_ADMIN_URL, prefix, home),
            home,
        )
        client = redis_client()
        try:
            first_key = f"{prefix}celery-task-meta-{ids[0]}"
            wait_until(
                lambda: bool(client.exists(first_key)),
                timeout=90,
                what="the no-op worker's first result",
                interval=0.02,
                watch=[worker],
            )
            cpu = worker.cpu_seconds()

            def drained() -> bool:
                return (
                    client.llen(f"{prefix}{noop_app.QUEUE}") == 0
                    and client.hlen(f"{prefix}unacked") == 0
                )

            wait_until(
                drained,
                timeout=max(120.0, n / 50),
                what="the no-op queue to drain",
                interval=0.25,
                watch=[worker],
            )
            wait_until(
                lambda: len(results_done(prefix, ids)) == n,
                timeout=30,
                what="every no-op result",
                watch=[worker],
            )
            done = results_done(prefix, ids)
            cpu = worker.cpu_seconds() - cpu
        finally:
            client.close()
            stop(worker)
        seconds = (max(done) - min(done)).total_seconds()
        log(f"bare Celery: {n:,} no-op tasks drained in {seconds:.1f} s ({n / seconds:,.0f}/s)")
        return Phase(n, seconds, send_s, n, f"{n:,} messages, one task each", cpu)


def measure(quick: bool) -> Figure:
    n = 2_000 if quick else 20_000
    n_noop = 2_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="pa-bench-e2e-") as tmp:
        home = Path(tmp)
        e2e, counted = _end_to_end(n, home, metrics=(False, True))
        bare = _bare_celery(n_noop, home)
    settings = make_settings(PG_ADMIN_URL, "bench_unused:")
    ratio = e2e.rate / bare.rate
    rows = (
        Row(
            f"end to end, offline agent, {n:,} runs",
            e2e.rate,
            "runs/s",
            target=">= bare Celery no-op",
            met=e2e.rate >= bare.rate,
        ),
        Row(f"bare Celery no-op tasks, {n_noop:,} tasks", bare.rate, "tasks/s"),
        Row(
            "end to end / bare Celery no-op",
            ratio,
            "x",
            target=f">= 1x now, {GOAL:.0f}x long-term goal",
            met=ratio >= 1.0,
        ),
        Row("long-term goal", ratio, "x", target=f">= {GOAL:.0f}x", met=ratio >= GOAL),
        Row(f"end to end with metrics on (METRICS_PORT), {n:,} runs", counted.rate, "runs/s"),
        Row(
            "metrics cost (1 - on / off)",
            100 * (1 - counted.rate / e2e.rate),
            "%",
            target=f"<= {METRICS_COST_MAX:.0f} %",
            met=counted.rate >= (1 - METRICS_COST_MAX / 100) * e2e.rate,
        ),
    )
    notes = (
        f"Worker CPU per item (from /proc, one process): end to end "
        f"{1e3 * e2e.worker_cpu / e2e.items:.2f} ms per run, bare Celery "
        f"{1e3 * bare.worker_cpu / bare.items:.2f} ms per no-op task.",
        f"End to end: {e2e.items:,} runs completed in {e2e.seconds:.1f} s ({e2e.detail}); the "
        f"scheduler's claim and publish took {e2e.produce_seconds:.1f} s of it, concurrently.",
        f"Bare Celery: {bare.items:,} no-op tasks drained in {bare.seconds:.1f} s (first to last "
        f"result); sending them beforehand took {bare.produce_seconds:.1f} s "
        f"({bare.items / bare.produce_seconds:,.0f}/s, `producer.batch()`).",
    )
    return Figure(
        KEY,
        TITLE,
        rows,
        method=METHOD.format(
            goal=GOAL,
            n=n,
            n_noop=n_noop,
            warmup=WARMUP,
            concurrency=settings.worker_concurrency,
            per_message=settings.runs_per_message,
        ),
        notes=notes,
        params={
            "runs": n,
            "noop_tasks": n_noop,
            "worker_concurrency": settings.worker_concurrency,
            "runs_per_message": settings.runs_per_message,
        },
    )
