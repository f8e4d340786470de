"""Scenario 4: three schedulers and two beat processes at once, 10,000 tasks due in one second.

10,000 one-shot tasks are bulk-seeded to fire at the same instant (300 of them, spread over
the burst, notify the webhook too, the others in-app only: 10,000 webhook calls would take this
shared 2-core machine minutes by themselves). Before the instant comes, three standalone
scheduler loops (``tests/support/scheduler_loop.py``) and two ``celery beat`` processes are
ticking against the same database, each claiming with ``FOR UPDATE SKIP LOCKED`` (with two
burst claimers each), and two workers consume. The unique key on ``(task_id, scheduled_for)``
is what must hold: exactly one run per task whoever claimed it, every run completed, every
notification delivered once. The figures are how the claims split between the processes, how
long until all 10,000 were claimed and sent, completed and notified, and how many runs were
sent again.

This scenario found the re-dispatch storm: every scheduler re-sent each run still waiting in
the queue once per ``DISPATCH_LEASE`` (3 s here), 106,000 run ids for 10,000 runs, left as
thousands of useless messages in Redis. The dispatcher now renews the lease of an unclaimed run
while messages wait in the run queue, and sends it again only once the queue is empty
(``TaskScheduler.dispatch_owed``).
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from chaos import report
from chaos.harness import Chaos, Load, seed_one_shots_bulk, sleep_until

TASKS = 10_000
WITH_WEBHOOK = 300
PARTS = 10
SCHEDULERS = 3
BEATS = 2
WORKERS = 2
TESTS_DIR = Path(__file__).resolve().parents[1]
#: tests/support/scheduler_loop.py with its log records shown (``event=tasks_claimed``...), and
#: running until stopped.
LOOP = (
    "import asyncio, logging; "
    "logging.basicConfig(level=logging.INFO, "
    "format='%(asctime)s %(levelname)s pid=%(process)d %(name)s %(message)s'); "
    "from support.scheduler_loop import main; "
    "asyncio.run(main(600.0))"
)
CLAIMED = re.compile(r"event=tasks_claimed tasks=\d+ runs=(\d+)")
RESENT = re.compile(r"event=runs_dispatched count=(\d+)")
POSTPONED = re.compile(r"event=redispatch_postponed count=(\d+)")


def _total(pattern: re.Pattern[str], log: str) -> int:
    return sum(int(n) for n in pattern.findall(log))


def test_three_schedulers_and_two_beats_on_10k_due_tasks(chaos: Chaos) -> None:
    began = time.monotonic()
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    fires_at: dict[int, datetime] = {}
    for part in range(PARTS):  # webhook tasks spread over the burst, not all claimed last
        in_app = seed_one_shots_bulk(
            chaos,
            (TASKS - WITH_WEBHOOK) // PARTS,
            at=at,
            title=f"burst-{part}",
            channels=["in_app"],
        )
        hooked = seed_one_shots_bulk(
            chaos, WITH_WEBHOOK // PARTS, at=at, title=f"burst-hook-{part}"
        )
        fires_at.update({**in_app.fires_at, **hooked.fires_at})
    load = Load(fires_at)
    seeded_s = time.monotonic() - began
    assert len(load.fires_at) == TASKS
    assert datetime.now(UTC) < at - timedelta(seconds=6), "seeding took too long to test a burst"

    # Runs travel 100 to a message (the default; FAST has 20): fewer, larger batches per worker.
    chaos.env["RUNS_PER_MESSAGE"] = "100"
    paths = [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = chaos.settings_env(PYTHONPATH=os.pathsep.join(paths))
    schedulers = [f"scheduler{i}" for i in range(SCHEDULERS)]
    for name in schedulers:
        chaos.processes.start(name, [sys.executable, "-c", LOOP], env)
    beats = [f"beat{i}" for i in range(BEATS)]
    for name in beats:
        chaos.beat(name)
    for i in range(WORKERS):
        chaos.worker(f"w{i}")

    sleep_until(at)
    fired = time.monotonic()
    claimed_s = completed_s = delivered_s = None
    deadline = fired + 100
    while time.monotonic() < deadline:
        runs, final, pending = chaos.db.rows(
            "SELECT (SELECT count(*) FROM task_runs), "
            "(SELECT count(*) FROM task_runs WHERE state IN ('succeeded', 'failed', 'skipped')), "
            "(SELECT count(*) FROM notifications WHERE status = 'pending')"
        )[0]
        elapsed = time.monotonic() - fired
        if claimed_s is None and runs >= TASKS:
            claimed_s = elapsed
        if completed_s is None and final >= TASKS:
            completed_s = elapsed
        if completed_s is not None and pending == 0:
            delivered_s = elapsed
            break
        time.sleep(0.25)

    names = schedulers + beats
    alive = [name for name in names if chaos.processes.procs[name].poll() is None]
    logs = {name: chaos.processes.log(name) for name in names}
    claims = {name: _total(CLAIMED, log) for name, log in logs.items()}
    resent = sum(_total(RESENT, log) for log in logs.values())
    postponed = sum(_total(POSTPONED, log) for log in logs.values())
    broker = redis.Redis.from_url(chaos.redis.url)
    left_in_queue = int(broker.llen("ai_tasks"))
    broker.close()

    outcome = chaos.outcome(
        load,
        completed_s,
        notes=(
            f"{SCHEDULERS} schedulers + {BEATS} beats + {WORKERS} workers; 10,000 due at once: "
            f"claimed and sent in {_secs(claimed_s)} s, completed in {_secs(completed_s)} s; "
            f"{resent} runs sent again"
        ),
    )
    outcome.extra.update(
        {
            "seed_s": round(seeded_s, 1),
            "claimed_and_sent_s": _rounded(claimed_s),
            "completed_s": _rounded(completed_s),
            "notifications_delivered_s": _rounded(delivered_s),
            "claims_by_process": claims,
            "runs_sent_again": resent,
            "redispatch_postponed": postponed,
            "messages_left_in_queue": left_in_queue,
        }
    )
    report.record(outcome)
    assert outcome.clean, outcome
    assert sum(claims.values()) == TASKS, claims  # each firing claimed by exactly one process
    assert alive == names, chaos.logs(*names)  # no scheduler or beat crashed on the contention


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
