"""Scenario 7: workers that stop consuming (SIGSTOP) in the middle of agent calls.

Under a steady load of one-shot tasks whose agent call takes a second, two of three workers
are stopped with SIGSTOP while each holds ``running`` runs: alive as far as the kernel and
Redis know, doing nothing. The first is stopped at any moment; the second in the middle of a
database transaction on runs (the recording of failed attempts, or a reaper pass), with rows
locked. Each run's first two attempts fail, so that their outcomes are written in
transactions: on PostgreSQL a claim, and a write of answers only, are single statements, which
a stopped worker cannot leave open (``tests/integration/test_round_trips.py``). Such a
transaction lasts a few milliseconds; waiting to catch one by chance failed one CI run in five
with one failed attempt, and one local run with two. So the test makes the moment: it locks
runs the worker holds whose attempt will fail, the worker's write of their failure waits on
that lock inside its transaction, and the worker is stopped there before the lock is released
(:func:`stop_inside_transaction`).
What must happen:

* **detected and reported**: each stopped worker stops beating (``worker_heartbeats``), and
  the health check names it, with the runs it holds, within a few heartbeat intervals;
  ``pa status --json`` exits 1 and lists it under ``stalled_workers``;
* **re-queued after the lease**: when their lease expires the reaper retries its runs, and the
  worker still running finishes them (attempt 2, another ``worker_id``) while the two are
  still stopped; so are the runs locked by the stopped transaction (PostgreSQL ends it after
  ``LEASE_MARGIN``): every firing due before the stops has a final run before they resume;
* **no second outcome**: after SIGCONT the stopped workers finish their agent calls and try to
  store the results; the compare-and-set refuses them (counted ``stale``) and the runs finished
  elsewhere are left exactly as they were.

The workers here beat every second and their runs' lease is 18 s (3 beats + ``LEASE_MARGIN``
15), renewed by each beat, so that a stall is reported well before the reaper takes its runs
over.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from chaos import report
from chaos.harness import FINAL, Chaos, sleep_until
from personal_assistant.clock import utcnow
from personal_assistant.database.engine import make_async_engine
from personal_assistant.workers.utils.health import Thresholds, assess
from personal_assistant.workers.utils.snapshot_reads import take_snapshot

HEARTBEAT = {"HEARTBEAT_INTERVAL": "1", "RUN_TIMEOUT": "10", "LEASE_MARGIN": "15"}
STALE_AFTER_S = 3.0  # STALE_AFTER_BEATS x HEARTBEAT_INTERVAL

_SCRIPT = Path(sys.executable).with_name("pa")
PA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "personal_assistant.cli.main"]

#: Sessions of a process in a given state (``idle in transaction``: stopped inside one; also
#: ``active``: running a statement of one) inside a transaction that has locked or written rows.
IN_TRANSACTION = """
SELECT a.pid, a.query FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.state = ANY(:states)
  AND a.client_port = ANY(:ports) AND a.backend_xid IS NOT NULL
"""
#: How long a stopped worker's session may take to finish the statement it was running.
SETTLE_S = 0.2
#: Attempts of each run that fail (the offline agent's ``simulate_failure_attempts``).
FAILING_ATTEMPTS = 2
#: Sessions of a process waiting for a row lock (taken by :func:`stop_inside_transaction`).
WAITING_FOR_LOCK = """
SELECT a.query FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.state = 'active' AND a.wait_event_type = 'Lock'
  AND a.client_port = ANY(:ports)
"""
#: How long a worker may take to write the failure of a run it holds: the agent answers after
#: 1 s, and a loaded machine adds some.
WRITE_WITHIN_S = 5.0
#: Statements of the worker's own transactions on runs (``RunProcessor``: a write of outcomes
#: with failures, a claim or a write on SQLite), each run after the runs concerned were locked:
#: the ownership check, the retries, the loads and writes of a claim or a recording.
RUN_TRANSACTION = re.compile(
    r"attempt=\(task_runs\.attempt \+|^SELECT task_runs\.id, task_runs\.task_id|row_number\(\)"
    r"|^SELECT task_runs\.id, task_runs\.attempt\s+FROM task_runs\s+WHERE task_runs\.id (IN|= ANY)"
    r"|^UPDATE task_runs SET state=\S+, lease_expires_at="
    r"|^INSERT INTO notifications|^UPDATE ai_tasks SET last_run_at"
)


def worker_id(pid: int) -> str:
    """The id a worker process writes on the runs it claims (``runtime.worker_id``)."""
    return f"{socket.gethostname()}:{pid}"


def held_runs(chaos: Chaos, pid: int) -> set[int]:
    rows = chaos.db.rows(
        "SELECT id FROM task_runs WHERE state = 'running' AND worker_id = :w", w=worker_id(pid)
    )
    return {row.id for row in rows}


def local_ports(pid: int) -> list[int]:
    """The local TCP ports of a process's sockets (its database connections among them)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def stalled_by_health(chaos: Chaos) -> set[str]:
    """The workers the health check reports stalled now (the function ``pa status`` calls)."""

    async def check() -> set[str]:
        engine = make_async_engine(chaos.database_url, pooled=False)
        try:
            snapshot = await take_snapshot(engine, utcnow())
        finally:
            await engine.dispose()
        health = assess(snapshot, Thresholds(max_heartbeat_age_s=STALE_AFTER_S))
        return {w.worker_id for w in health.stalled}

    return asyncio.run(check())


def pa_status(chaos: Chaos) -> tuple[int, dict[str, object]]:
    env = {**os.environ, **chaos.settings_env(**HEARTBEAT)}
    done = subprocess.run(
        [*PA, "status", "--json"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def stale_results(log: str) -> int:
    """Outcomes the compare-and-set refused, from the worker's ``execute_ai_task`` returns."""
    return sum(int(n) for n in re.findall(r"'stale': (\d+)", log))


@dataclass
class Stall:
    """A stopped worker: the runs it held (read after the stop: frozen), when it stopped, and
    the statement its idle transaction last ran, if it was stopped inside one."""

    runs: set[int]
    at: float  # monotonic
    in_transaction: str | None = None


Ready = Callable[[], str | bool | None]


def stop_when_holding(chaos: Chaos, pid: int) -> Stall:
    """SIGSTOP ``pid`` at a moment it holds running runs. Otherwise SIGCONT, wait a moment
    (random, so as not to fall into step with the worker), and try again, for at most 60 s."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if held_runs(chaos, pid):
            os.kill(pid, signal.SIGSTOP)
            stall = _stopped_at(chaos, pid, lambda: True)
            if stall is not None:
                return stall
            os.kill(pid, signal.SIGCONT)
        time.sleep(random.uniform(0.002, 0.01))
    raise AssertionError(f"worker {pid} was never caught in the wanted state")


def _stopped_at(chaos: Chaos, pid: int, ready: Ready) -> Stall | None:
    """The stall of ``pid``, just stopped, if it holds runs and ``ready()`` within SETTLE_S."""
    at, state = time.monotonic(), ready()
    while not state and time.monotonic() < at + SETTLE_S:
        time.sleep(0.01)
        state = ready()
    runs = held_runs(chaos, pid)
    if runs and state:
        return Stall(runs, at, state if isinstance(state, str) else None)
    return None


def stop_inside_transaction(chaos: Chaos, pid: int, ports: list[int], ready: Ready) -> Stall:
    """SIGSTOP ``pid`` inside its transaction on runs, with the runs it locked still locked.

    Lock the runs it holds whose attempt will fail, in a transaction of the test's own; once
    the worker's write of their failure waits for that lock, stop the worker and release the
    lock: PostgreSQL ends the statement and the worker's session stays idle in its transaction,
    holding the rows, until the worker resumes or PostgreSQL ends it. The lock is ``FOR KEY
    SHARE``: it holds back the write's ``FOR UPDATE`` but not the heartbeat's renewal of the
    same runs' lease, which would otherwise queue ahead of the write, and be stopped holding
    the rows itself. ``ports``: the worker's local ports (:func:`local_ports`).
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stopped = False
        with chaos.db.engine.connect() as conn, conn.begin():
            failing = conn.execute(
                text(
                    "SELECT id FROM task_runs WHERE state = 'running' AND worker_id = :w "
                    "AND attempt <= :failing FOR KEY SHARE"
                ),
                {"w": worker_id(pid), "failing": FAILING_ATTEMPTS},
            ).all()
            waited = time.monotonic() + WRITE_WITHIN_S
            while failing and not stopped and time.monotonic() < waited:
                waiting = chaos.db.rows(WAITING_FOR_LOCK, ports=ports)
                if any(RUN_TRANSACTION.search(row.query) for row in waiting):
                    os.kill(pid, signal.SIGSTOP)
                    stopped = True
                else:
                    time.sleep(0.01)
        if stopped:
            stall = _stopped_at(chaos, pid, ready)
            if stall is not None:
                return stall
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"worker {pid} was never stopped inside a transaction on runs")


@contextmanager
def stopped(chaos: Chaos, victims: dict[str, int]) -> Iterator[dict[str, Stall]]:
    """Stop ``wb`` inside a transaction on runs, then ``wa`` at any moment; SIGCONT on leaving.

    ``wb`` first: a worker stopped before that wait would have its runs' lease run out (and the
    reaper take them back, so it holds nothing to be reported stalled for) before the test
    looks (seen in CI once, when ``wb`` was caught by chance).
    """
    held: dict[str, Stall] = {}
    try:
        ports = local_ports(victims["wb"])

        def in_transaction() -> str | None:
            rows = chaos.db.rows(IN_TRANSACTION, ports=ports, states=["idle in transaction"])
            found = [row.query for row in rows if RUN_TRANSACTION.search(row.query)]
            return found[0][:80] if found else None

        held["wb"] = stop_inside_transaction(chaos, victims["wb"], ports, in_transaction)
        held["wa"] = stop_when_holding(chaos, victims["wa"])
        yield held
    finally:
        for pid in victims.values():
            os.kill(pid, signal.SIGCONT)


def test_workers_stopped_mid_run(chaos: Chaos) -> None:
    load = chaos.seed_one_shots(
        300,
        spread=timedelta(seconds=36),
        context={
            "simulate_delay_seconds": 1.0,
            "simulate_failure": "a try that fails",
            "simulate_failure_attempts": FAILING_ATTEMPTS,
        },
    )
    chaos.beat()
    pids = {name: chaos.worker(name, **HEARTBEAT) for name in ("wa", "wb", "wc")}
    for name in pids:
        chaos.wait_ready(name)
    victims = {name: pids[name] for name in ("wa", "wb")}
    ids = {name: worker_id(pid) for name, pid in victims.items()}
    sleep_until(load.first + timedelta(seconds=3))

    with stopped(chaos, victims) as held:
        both_stopped = datetime.now(UTC)
        stopped_at = min(stall.at for stall in held.values())
        all_held = set().union(*(stall.runs for stall in held.values()))
        # Detected: the health check names both, while they still hold their runs.
        detected: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while len(detected) < len(ids) and time.monotonic() < deadline:
            reported = stalled_by_health(chaos)
            for name, wid in ids.items():
                if wid in reported and name not in detected:
                    detected[name] = time.monotonic() - held[name].at
            time.sleep(0.2)
        assert set(detected) == set(ids), (detected, chaos.logs(*pids))
        # Reported by `pa status --json`, as an operator sees it.
        code, status = pa_status(chaos)
        listed = {w["worker_id"] for w in status["stalled_workers"]}  # type: ignore[attr-defined]
        assert code == 1 and set(ids.values()) <= listed, status
        # Re-queued after the lease: every held run finishes on the worker still running, and
        # every firing due before the stops has a final run, the stopped workers still stopped.
        due = sum(1 for at in load.fires_at.values() if at <= both_stopped)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if chaos.final_runs(both_stopped) >= due:
                break
            time.sleep(0.25)
        recovered_s = time.monotonic() - stopped_at
        finished = chaos.final_runs(both_stopped)
        assert finished >= due, (finished, due, chaos.counts(), chaos.logs("wc"))
        before_resume = chaos.db.rows(
            "SELECT id, state, attempt, worker_id, finished_at, result FROM task_runs "
            "WHERE id = ANY(:ids) ORDER BY id",
            ids=list(all_held),
        )
        assert all(
            row.state in FINAL and row.attempt >= 2 and row.worker_id not in ids.values()
            for row in before_resume
        ), before_resume

    # Resumed: each stopped worker finishes its agent calls; its late outcomes are refused
    # (stale), or their write fails if PostgreSQL ended its transaction. The runs finished
    # elsewhere must stay exactly as they were.
    expected_stale = len(held["wa"].runs)
    deadline = time.monotonic() + 30
    while stale_results(chaos.processes.log("wa")) < expected_stale:
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert chaos.settle(load, timeout=90), chaos.logs(*pids)
    refused = {name: stale_results(chaos.processes.log(name)) for name in victims}
    log_wb = chaos.processes.log("wb")
    after_resume = chaos.db.rows(
        "SELECT id, state, attempt, worker_id, finished_at, result FROM task_runs "
        "WHERE id = ANY(:ids) ORDER BY id",
        ids=list(all_held),
    )
    assert after_resume == before_resume
    # wb's transaction was ended by PostgreSQL: on resuming, that batch failed to write.
    ended = sum(
        1
        for line in log_wb.splitlines()
        if "execute_ai_task[" in line
        and "raised unexpected" in line
        and ("idle-in-transaction timeout" in line or "closed the connection" in line)
    )
    outcome = chaos.outcome(
        load,
        recovered_s,
        notes=(
            f"2 of 3 workers SIGSTOPped holding {len(all_held)} running runs, one inside a "
            f"transaction; reported stalled after {max(detected.values()):.1f} s; every run "
            f"due finished elsewhere after {recovered_s:.0f} s, still stopped (lease 18 s); "
            f"{sum(refused.values())} late outcomes refused (stale)"
        ),
    )
    outcome.extra.update(
        {
            "held_runs": {name: len(stall.runs) for name, stall in held.items()},
            "stopped_inside": held["wb"].in_transaction,
            "transactions_ended_by_postgres": ended,
            "detected_s": {name: round(s, 1) for name, s in detected.items()},
            "stale_refused": refused,
        }
    )
    report.record(outcome)
    assert outcome.clean, outcome
