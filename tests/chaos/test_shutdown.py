"""Scenario 10: workers shut down in the middle of agent calls, warm and cold.

Under a steady load of one-shot tasks whose agent call takes two seconds, the oldest worker is
signalled while it holds ``running`` runs, several times, and a replacement is started each
time. Either way each run finishes or is re-queued, never dropped, and is recorded once: the
invariants of :meth:`Chaos.outcome`. The figures say which path each held run took.

* **Warm** (SIGTERM, threads pool, the default): Celery stops consuming and waits for the tasks
  in progress, so the runs a worker holds finish on it. Messages it had reserved but not started
  go back to Redis unacknowledged (``acks_late``); the compare-and-set makes them no-ops.
* **Cold** (SIGTERM, then SIGQUIT while the warm shutdown waits, on prefork workers): Celery
  terminates the pool children in the middle of their agent calls. Their messages are rejected
  back to Redis (``task_reject_on_worker_lost``) and their runs, still ``running``, are retried
  by the reaper when their lease expires. (On the threads pool a cold shutdown cannot cut a
  thread short: Celery logs ``NotImplementedError: ... does not implement kill_job``,
  celery#10490, and waits for the tasks like a warm one.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chaos import report
from chaos.harness import FINAL, Chaos, Load, sleep_until
from chaos.servers import children_of


def worker_id(pid: int) -> str:
    """The id a worker process writes on the runs it claims (``runtime.worker_id``)."""
    return f"{socket.gethostname()}:{pid}"


@dataclass(frozen=True)
class Shutdown:
    """One signalled worker: the runs it held, and how each ended up once it had exited."""

    held: int
    finished_by_it: int  # final, recorded by this worker's attempt
    requeued: int  # left unfinished: retried by the reaper when their lease ends
    exit_code: int | None
    exit_s: float


@dataclass
class Signalled:
    """A worker signalled while it held ``held`` (run id, attempt); its exit is awaited later."""

    proc: subprocess.Popen[bytes]
    ids: list[str]
    held: list[tuple[int, int]]
    sent: float
    exited: float | None = None

    def poll(self) -> bool:
        if self.exited is None and self.proc.poll() is not None:
            self.exited = time.monotonic()
        return self.exited is not None


def _held_runs(chaos: Chaos, ids: list[str]) -> list[tuple[int, int]]:
    rows = chaos.db.rows(
        "SELECT id, attempt FROM task_runs WHERE state = 'running' AND worker_id = ANY(:w)",
        w=ids,
    )
    return [(row.id, row.attempt) for row in rows]


def _signal_mid_run(
    chaos: Chaos, name: str, signals: tuple[signal.Signals, ...]
) -> Signalled | None:
    """Signal worker ``name`` once it holds running runs (0.3 s between signals).

    A prefork worker's runs are claimed by its children, under their own pids.
    """
    proc = chaos.processes.procs[name]
    deadline = time.monotonic() + 15
    while True:
        ids = [worker_id(pid) for pid in (proc.pid, *children_of(proc.pid))]
        held = _held_runs(chaos, ids)
        if held or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not held:
        return None
    sent = time.monotonic()
    for number, sig in enumerate(signals):
        if number:
            time.sleep(0.3)
        os.kill(proc.pid, sig)
    return Signalled(proc, ids, held, sent)


def _exits(chaos: Chaos, signalled: list[Signalled], timeout: float = 60) -> list[Shutdown]:
    """Await every signalled worker's exit (``timeout`` each from its signal; past it, hung)."""
    while not all(s.poll() or time.monotonic() - s.sent > timeout for s in signalled):
        time.sleep(0.05)
    shutdowns = []
    for s in signalled:
        after = chaos.db.rows(
            "SELECT id, state, attempt, worker_id FROM task_runs WHERE id = ANY(:ids)",
            ids=[run_id for run_id, _ in s.held],
        )
        claimed = dict(s.held)
        finished = sum(
            1
            for row in after
            if row.state in FINAL and row.worker_id in s.ids and row.attempt == claimed[row.id]
        )
        exit_s = (s.exited or time.monotonic()) - s.sent
        code = s.proc.returncode if s.exited is not None else None  # None: hung
        shutdowns.append(Shutdown(len(s.held), finished, len(s.held) - finished, code, exit_s))
    return shutdowns


def _shut_down_repeatedly(
    chaos: Chaos,
    load: Load,
    signals: tuple[signal.Signals, ...],
    *,
    every: float,
    until: datetime,
    **worker_env: str,
) -> list[Shutdown]:
    """Signal the oldest worker every ``every`` s until ``until``, a replacement started each
    time. Exits are awaited at the end, not one by one, so that a slow exit does not hold up
    the next shutdown (one cold shutdown of a prefork worker took 34 s instead of 2 s)."""
    live = ["w0", "w1"]
    for name in live:
        chaos.worker(name, **worker_env)
    for name in live:
        chaos.wait_ready(name)
    sleep_until(load.first + timedelta(seconds=2))
    signalled: list[Signalled] = []
    generation = len(live)
    while datetime.now(UTC) < until:
        replacement = f"w{generation}"
        generation += 1
        chaos.worker(replacement, **worker_env)
        done = _signal_mid_run(chaos, live.pop(0), signals)
        if done is not None:
            signalled.append(done)
        live.append(replacement)  # signalled in its turn, once it holds runs
        pause = time.monotonic() + every
        while time.monotonic() < pause:  # watching the exits meanwhile
            for s in signalled:
                s.poll()
            time.sleep(0.05)
    return _exits(chaos, signalled)


def _record(chaos: Chaos, load: Load, shutdowns: list[Shutdown], how: str) -> None:
    last_fault = time.monotonic()
    recover = chaos.wait_caught_up(load, last_fault, timeout=60)
    assert chaos.settle(load, timeout=90), chaos.logs(*chaos.processes.procs)
    held = sum(s.held for s in shutdowns)
    finished = sum(s.finished_by_it for s in shutdowns)
    outcome = chaos.outcome(
        load,
        recover,
        notes=(
            f"{len(shutdowns)} workers stopped by {how} mid-run holding {held} running runs: "
            f"{finished} finished before exit, {held - finished} re-queued; "
            f"slowest exit {max((s.exit_s for s in shutdowns), default=0):.1f} s"
        ),
    )
    outcome.extra.update(
        {
            "shutdowns": [
                {
                    "held": s.held,
                    "finished_by_it": s.finished_by_it,
                    "requeued": s.requeued,
                    "exit_code": s.exit_code,
                    "exit_s": round(s.exit_s, 1),
                }
                for s in shutdowns
            ],
            "messages_not_claimed": sum(
                chaos.processes.log(name).count("event=runs_not_claimed")
                for name in chaos.processes.procs
            ),
        }
    )
    report.record(outcome)
    assert len(shutdowns) >= 3, shutdowns  # several, each in the middle of agent calls
    assert all(s.exit_code is not None for s in shutdowns), shutdowns  # none hung
    assert outcome.clean, outcome


def test_workers_sigterm_mid_run(chaos: Chaos) -> None:
    load = chaos.seed_one_shots(
        100, spread=timedelta(seconds=24), context={"simulate_delay_seconds": 2.0}
    )
    chaos.beat()
    shutdowns = _shut_down_repeatedly(
        chaos, load, (signal.SIGTERM,), every=1.0, until=load.last - timedelta(seconds=3)
    )
    _record(chaos, load, shutdowns, "SIGTERM (warm shutdown)")


def test_workers_sigterm_then_sigquit_mid_run(chaos: Chaos) -> None:
    load = chaos.seed_one_shots(
        60, spread=timedelta(seconds=24), context={"simulate_delay_seconds": 2.0}
    )
    chaos.beat()
    shutdowns = _shut_down_repeatedly(
        chaos,
        load,
        (signal.SIGTERM, signal.SIGQUIT),
        every=1.0,
        until=load.last - timedelta(seconds=3),
        WORKER_POOL="prefork",
        WORKER_CONCURRENCY="4",
    )
    _record(chaos, load, shutdowns, "SIGTERM then SIGQUIT (cold shutdown, prefork)")
