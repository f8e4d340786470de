"""Checks shared by the broker and database outage scenarios (2 and 3): did everything recover?

An outage must leave no process dead or stuck in a failure loop: each process is still running,
each worker takes runs from ``ai_tasks`` after the outage, starting them or receiving their
messages (a worker alive but no longer consuming is the known Celery failure mode after a
reconnect; one that received only messages redelivered after another worker had run them has
nothing to start, and was counted idle until a fresh-clone CI of 2fc5017 saw it), and no
process logs trouble once the outage is some seconds behind it. :func:`finish` checks that,
records the scenario's row and asserts the invariants of :meth:`Chaos.outcome`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from chaos import report
from chaos.harness import Chaos, Load, seed_one_shots_spread_bulk, sleep_until

WORKERS = ("wa", "wb")
PROCESSES = ("beat", *WORKERS)
#: Log lines of a process that cannot reach Redis or PostgreSQL, or gave up.
TROUBLE = (
    "Connection to broker lost",
    "Cannot connect to",
    "Unrecoverable error",
    "raised unexpected",
    "Message Error",  # beat could not send one of its entries (the reaper)
    "event=scheduler_tick_failed",
    "event=heartbeat_failed",
    "event=outcomes_not_stored",
)
#: In a worker's log: a reaper pass, which beat sends every ``REAPER_INTERVAL``.
REAPER_TASK = "maintenance_tasks.reap_expired_runs["
#: In a worker's log: a run's message taken from ``ai_tasks`` (with "received").
RUN_TASK = "ai_tasks.execute_ai_task["
#: Trouble logged this long after the outage ended counts as not recovered.
SETTLING = timedelta(seconds=15)


def start(chaos: Chaos, count: int, *, spread: timedelta, delay_s: float = 1.0) -> Load:
    """Beat and two workers, then ``count`` one-shots over ``spread``, each a ``delay_s`` call."""
    chaos.beat()
    for name in WORKERS:
        chaos.worker(name)
    for name in WORKERS:
        chaos.wait_ready(name)
    return seed_one_shots_spread_bulk(
        chaos,
        count,
        start=datetime.now(UTC) + timedelta(seconds=3),
        spread=spread,
        context={"simulate_delay_seconds": delay_s},
    )


def finish(chaos: Chaos, load: Load, *, notes: str) -> None:
    """Called as the outage ends: time the catch-up, settle, record the row, and assert:
    invariants, processes alive, consuming, quiet."""
    back, back_at = time.monotonic(), datetime.now(UTC)
    recover = chaos.wait_caught_up(load, back, timeout=60)
    settled = chaos.settle(load, timeout=90)
    settled_at = back_at + SETTLING
    sleep_until(settled_at + timedelta(seconds=3))  # a few reaper passes after settling
    exited = [n for n in PROCESSES if chaos.processes.procs[n].poll() is not None]
    started = runs_started_since(chaos, back_at)
    # A worker consumes `ai_tasks` again when it starts runs, or takes runs' messages that
    # another worker had already run (redelivered after the outage: nothing left to start).
    idle = [
        n
        for n in WORKERS
        if chaos.processes.procs[n].pid not in started
        and not any("received" in line for line in lines_after(chaos, n, back_at, (RUN_TASK,)))
    ]
    still_failing = {
        n: lines for n in PROCESSES if (lines := lines_after(chaos, n, settled_at, TROUBLE))
    }
    # Beat still sends its entries and a worker still runs them: the reaper ran after the outage.
    reaped = [
        line
        for n in WORKERS
        for line in lines_after(chaos, n, settled_at, (REAPER_TASK,))
        if "succeeded in" in line
    ]
    outcome = chaos.outcome(load, recover, notes=notes)
    report.record(outcome)
    assert settled, chaos.logs(*PROCESSES)
    assert not exited, chaos.logs(*exited)
    assert not idle, (started, chaos.logs(*idle))
    assert not still_failing, still_failing
    assert reaped, chaos.logs(*PROCESSES)
    assert outcome.clean, outcome


def runs_started_since(chaos: Chaos, since: datetime) -> dict[int, int]:
    """Runs whose (last) attempt started after ``since``, per worker process id."""
    rows = chaos.db.rows(
        "SELECT worker_id, count(*) AS n FROM task_runs "
        "WHERE started_at > :t AND worker_id IS NOT NULL GROUP BY worker_id",
        t=since,
    )
    return {int(row.worker_id.rsplit(":", 1)[1]): int(row.n) for row in rows}


def lines_after(chaos: Chaos, name: str, after: datetime, needles: Sequence[str]) -> list[str]:
    """Lines of ``name``'s log stamped after ``after`` that contain one of ``needles``."""
    found = []
    for line in chaos.processes.log(name).splitlines():
        if not line.startswith("[") or not any(n in line for n in needles):
            continue
        try:
            when = stamp(line)
        except ValueError:
            continue
        if when > after:
            found.append(line[:300])
    return found


def stamp(line: str) -> datetime:
    """When a Celery log line was written: "[2026-11-29 11:24:04,427: WARNING/MainProcess] ...",
    in local time."""
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
