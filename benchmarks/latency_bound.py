"""Figure: runs/s and memory of one worker process when the model answers after 2 s.

A local chat-completions server (``benchmarks/slow_chat_server.py``, a child process) answers
every request after ``DELAY`` seconds. The project's worker runs the agent calls of many runs
concurrently on its event loop; beside it, Celery's prefork pool makes the same calls one run
per task, one task per child process at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import prefork_app
from benchmarks.claim_rate import claim_until_empty
from benchmarks.fixtures import (
    PG_ADMIN_URL,
    ROOT,
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
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import run_publisher
from personal_assistant.workers.routing import worker_queues

KEY = "latency"
TITLE = "Latency-bound runs/s (model answers after 2 s)"
DELAY = 2.0
MAX_IN_FLIGHT = 500
THREADS = 8  # Celery threads: 5 messages of RUNS_PER_MESSAGE=100 fill MAX_IN_FLIGHT, 3 spare
PREFORK = 8  # prefork children
WARMUP = 20
IN_FLIGHT_GOAL = 200  # "hundreds of runs in flight per process"

METHOD = """\
**What it means.** When the model is slow (here every answer takes {delay:g} s), a worker's
throughput is set by how many agent calls it keeps in flight, not by CPU. The project's worker
runs each message's runs concurrently on its event loop, up to `MAX_IN_FLIGHT` per process;
Celery's prefork pool makes one call per child process at a time. Goal: hundreds of runs in
flight per process.

**How it was measured.** A local chat-completions server on loopback
(`benchmarks/slow_chat_server.py`: asyncio, HTTP/1.1 keep-alive, a child process) answers every
request after {delay:g} s with a valid completion and usage, and counts the requests it holds
at once. *Project worker*: {n:,} daily tasks due in the same second; one
`celery -A personal_assistant.workers.celery_app worker` with the routed queues, the threads
pool (`WORKER_CONCURRENCY={threads}`), `AGENT=openai` with `AGENT_BASE_URL` at the server,
`MAX_IN_FLIGHT={max_in_flight}`, warmed up with {warmup} runs. The benchmark claims the due tasks
with `TaskScheduler` and the real `publish_runs` (`RUNS_PER_MESSAGE={per_message}`) and polls
the database until every run is `succeeded`; rate = runs / (last `finished_at` - start of the
claim). *Prefork*: a Celery app of the benchmark's own (`benchmarks/prefork_app.py`, the
project's `celery_config`: prefetch 1, `acks_late`, Redis result backend) whose task makes the
same request (same prompt, same reply parsing) synchronously with `httpx`; one worker with
`-P prefork -c {prefork}`, warmed up, then {n_prefork:,} tasks sent with `producer.batch()`;
rate = tasks / (last result's `date_done` - start of sending). The prefork tasks only call the
server; the project's runs also claim, store results and write notifications in PostgreSQL.
Memory: the proportional set size (PSS, `/proc/<pid>/smaps_rollup`) summed over the worker
process and all its children, sampled every 0.1 s; the peak is reported. PSS counts a page
shared by the prefork children once, split between them.
"""


# --- The slow server -----------------------------------------------------------------------------


@dataclass
class SlowServer:
    proc: subprocess.Popen[str]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self, reset: bool = False) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.port}/stats" + ("?reset=1" if reset else "")
        with urllib.request.urlopen(url, timeout=5) as answer:
            data: dict[str, int] = json.loads(answer.read())
        return data


@contextmanager
def slow_server(delay: float) -> Iterator[SlowServer]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.slow_chat_server", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the slow chat server did not start: {line!r}")
        yield SlowServer(proc, int(line.split()[1]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- Memory of a process tree --------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB of ``pid`` and all its descendants."""
    pss = rss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        pss += _kib(Path(f"/proc/{current}/smaps_rollup"), "Pss:")
        rss += _kib(Path(f"/proc/{current}/status"), "VmRSS:")
        todo.extend(_children(current))
    return pss, rss


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants, from /proc."""
    ticks = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(_children(current))
    return ticks / os.sysconf("SC_CLK_TCK")


class PeakMemory:
    """Samples a process tree's memory in a thread until :meth:`stop`; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.peak_pss = self.peak_rss = 0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            pss, rss = tree_memory(self.pid)
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self._stop.wait(self._interval)

    def stop(self) -> PeakMemory:
        self._stop.set()
        self._thread.join()
        return self


# --- The two phases ------------------------------------------------------------------------------


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

    @property
    def rate(self) -> float:
        return self.runs / self.seconds


def _succeeded(url: str, since: datetime) -> int:
    found = scalar(
        url,
        "SELECT count(*) FROM task_runs WHERE scheduled_for >= %(since)s AND state = 'succeeded'",
        {"since": since},
    )
    return int(str(found))


def _failed(url: str, since: datetime) -> int:
    found = scalar(
        url,
        "SELECT count(*) FROM task_runs WHERE scheduled_for >= %(since)s AND state <> 'succeeded' "
        "AND state NOT IN ('queued', 'running')",
        {"since": since},
    )
    return int(str(found))


def _mean_run_seconds(url: str, since: datetime) -> float:
    found = scalar(
        url,
        "SELECT avg(extract(epoch FROM finished_at - started_at)) FROM task_runs "
        "WHERE scheduled_for >= %(since)s",
        {"since": since},
    )
    return float(str(found))


def _worker_env(url: str, prefix: str, home: Path, server: SlowServer) -> dict[str, str]:
    env = process_env(url, prefix, home)
    env.update(
        AGENT="openai",
        AGENT_BASE_URL=server.base_url,
        AGENT_MODEL=prefork_app.MODEL,
        AGENT_TIMEOUT="30",
        RUN_TIMEOUT="60",
        MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
        WORKER_CONCURRENCY=str(THREADS),
    )
    return env


def _project_worker(n: int, home: Path, server: SlowServer) -> Phase:
    with redis_prefix() as prefix, database() as url:
        warm_at = utc_seconds(utcnow()) - timedelta(minutes=2)
        due_at = warm_at + timedelta(minutes=1)
        load_tasks(url, WARMUP, start=warm_at, kinds="mixed")
        load_tasks(url, n, start=due_at, kinds="mixed")
        vacuum(url, "ai_tasks", "users")
        settings = make_settings(url, prefix, home)
        app.use_settings(settings)

        publish = run_publisher(app, per_message=settings.runs_per_message)

        worker = start_celery(
            "worker-latency",
            "personal_assistant.workers.celery_app",
            worker_args(worker_queues(), f"bench-latency-{token()}"),
            _worker_env(url, prefix, home, server),
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
            server.stats(reset=True)
            cpu = tree_cpu_seconds(worker.proc.pid)
            started = datetime.now(UTC)
            claimed = asyncio.run(claim_until_empty(url, settings, publish, utcnow()))
            log(f"claimed {claimed.tasks:,} tasks in {claimed.seconds:.1f} s; waiting for the runs")
            wait_until(
                lambda: _succeeded(url, due_at) + _failed(url, due_at) >= n,
                timeout=max(120.0, 4 * DELAY * n / MAX_IN_FLIGHT),
                what="all runs",
                interval=0.25,
                watch=[worker],
            )
            cpu = tree_cpu_seconds(worker.proc.pid) - cpu
        finally:
            memory.stop()
            stop(worker)
        stats = server.stats()
        ok = _succeeded(url, due_at)
        if ok != n:
            raise RuntimeError(f"{ok} of {n} runs succeeded; the worker log ends:\n{worker.tail()}")
        last = scalar(
            url,
            "SELECT max(finished_at) FROM task_runs WHERE scheduled_for >= %(since)s",
            {"since": due_at},
        )
        assert isinstance(last, datetime)
        seconds = (last - started).total_seconds()
        mean_run = _mean_run_seconds(url, due_at)
        log(f"project worker: {n:,} runs in {seconds:.1f} s ({n / seconds:,.0f}/s), {stats}")
        return Phase(
            n,
            seconds,
            stats["peak_in_flight"],
            memory.peak_pss / 1024,
            memory.peak_rss / 1024,
            stats["requests"],
            cpu,
            mean_run,
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


def measure(quick: bool) -> Figure:
    n = 500 if quick else 2_000
    n_prefork = 2 * PREFORK if quick else 8 * PREFORK
    with tempfile.TemporaryDirectory(prefix="pa-bench-latency-") as tmp, slow_server(DELAY) as srv:
        home = Path(tmp)
        ours = _project_worker(n, home, srv)
        prefork = _prefork(n_prefork, home, srv)
    per_message = make_settings(PG_ADMIN_URL, "bench_unused:").runs_per_message
    ceiling = MAX_IN_FLIGHT / DELAY
    rows = (
        Row(
            f"project worker (threads pool, MAX_IN_FLIGHT={MAX_IN_FLIGHT}), {n:,} runs",
            ours.rate,
            "runs/s",
            target=f"ceiling {ceiling:,.0f} (MAX_IN_FLIGHT / {DELAY:g} s)",
        ),
        Row(
            "project worker: peak runs in flight (seen by the server)",
            ours.peak_in_flight,
            "runs",
            target=f">= {IN_FLIGHT_GOAL} (hundreds per process)",
            met=ours.peak_in_flight >= IN_FLIGHT_GOAL,
        ),
        Row(
            f"project worker: mean run duration (the server answers in {DELAY:g} s)",
            ours.mean_run_s or 0.0,
            "s",
        ),
        Row("project worker: peak memory (PSS, process tree)", ours.peak_pss_mib, "MiB"),
        Row(f"Celery prefork -c {PREFORK}, {n_prefork:,} calls", prefork.rate, "runs/s"),
        Row("prefork: peak calls in flight", prefork.peak_in_flight, "runs"),
        Row(
            f"prefork: peak memory (PSS, parent + {PREFORK} children)",
            prefork.peak_pss_mib,
            "MiB",
        ),
        Row("project worker / prefork, runs/s", ours.rate / prefork.rate, "x"),
        Row(
            "project worker / prefork, runs/s per MiB",
            (ours.rate / ours.peak_pss_mib) / (prefork.rate / prefork.peak_pss_mib),
            "x",
        ),
    )
    notes = (
        f"Peak RSS summed over the process tree (shared pages counted in every process): project "
        f"worker {ours.peak_rss_mib:,.0f} MiB, prefork {prefork.peak_rss_mib:,.0f} MiB.",
        f"Requests the server answered while measured: project worker {ours.requests:,} for "
        f"{ours.runs:,} runs, prefork {prefork.requests:,} for {prefork.runs:,} calls.",
        f"Worker CPU while measured (process tree, from /proc): project worker "
        f"{ours.cpu_s:.1f} s ({1e3 * ours.cpu_s / ours.runs:.1f} ms per run), prefork "
        f"{prefork.cpu_s:.1f} s ({1e3 * prefork.cpu_s / prefork.runs:.1f} ms per call). A mean run "
        f"duration above {DELAY:g} s is time spent in the worker, not in the server.",
        f"Prefork's ceiling is {PREFORK} / {DELAY:g} s = {PREFORK / DELAY:g} calls/s; more "
        "children raise it only by as many processes, each with its own memory.",
    )
    return Figure(
        KEY,
        TITLE,
        rows,
        method=METHOD.format(
            delay=DELAY,
            n=n,
            threads=THREADS,
            max_in_flight=MAX_IN_FLIGHT,
            warmup=WARMUP,
            per_message=per_message,
            prefork=PREFORK,
            n_prefork=n_prefork,
        ),
        notes=notes,
        params={
            "delay_s": DELAY,
            "runs": n,
            "prefork_calls": n_prefork,
            "max_in_flight": MAX_IN_FLIGHT,
            "worker_concurrency": THREADS,
            "runs_per_message": per_message,
            "prefork_concurrency": PREFORK,
        },
    )
