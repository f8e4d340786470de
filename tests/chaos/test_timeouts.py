"""Scenario 5: a run that outlives the broker's visibility timeout; a run over the time limit.

**Visibility timeout.** With late acknowledgement, Redis (kombu's Redis transport) gives a
message back to the queue once it has been unacknowledged for ``BROKER_VISIBILITY_TIMEOUT``,
even if a worker is still on it. The settings refuse an agent call that could outlive it:
``RUN_TIMEOUT + LEASE_MARGIN + 30 <= BROKER_VISIBILITY_TIMEOUT`` (at least 60 s), so a 70-s run
under a 60-s timeout cannot be configured; the test shows a worker refusing to start with it.
The closest allowed case is a *message* that outlives the timeout while its runs are going: a
worker with one slot (``MAX_IN_FLIGHT=1``) takes a message of three 24-s runs and works through
them one after the other, 72 s in all, under a 60-s timeout (``RUN_TIMEOUT=25``,
``LEASE_MARGIN=5``). After 61 s, while the third run is going, the message is restored to the
queue (kombu's ``restore_visible``, the sweep every consumer runs; kombu 5.7 scans about every
100 s, so the test runs it at the first moment it may act) and a second worker receives the
same message. The invariant: it claims nothing (``event=runs_not_claimed``), each run has
exactly one attempt and one record, each notification is delivered once.

**Time limit.** ``RUN_TIMEOUT=3`` with tasks whose agent call takes 6 s: each attempt fails
with "the agent did not answer within 3 s", retries as configured (``max_retries=2``) and the
run ends ``failed`` after 3 attempts, among healthy tasks, on a threads worker and a prefork
worker. Afterwards both workers are the same processes and serve a new wave of tasks.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from statistics import median

import pytest
import redis

from chaos import report
from chaos.harness import Chaos, Load, sleep_until
from personal_assistant.errors import ConfigurationError
from support.processes import wait_until
from support.stack import client_app, settings_for

VISIBILITY = {
    "BROKER_VISIBILITY_TIMEOUT": "60",
    "RUN_TIMEOUT": "25",
    "LEASE_MARGIN": "5",  # 25 + 5 + 30 = 60: the longest run the settings allow
    # The runs waiting behind the first in the worker are not sent again by the dispatcher
    # before Redis gives their message back.
    "DISPATCH_LEASE": "60",
    "RUNS_PER_MESSAGE": "3",
}
SLOW_RUN_S = 24
RECEIVED = re.compile(r"execute_ai_task\[([0-9a-f-]+)\] received")


def _received(log: str) -> set[str]:
    return set(RECEIVED.findall(log))


def test_visibility_timeout_redelivers_a_message_whose_run_is_going(chaos: Chaos) -> None:
    # A 70-s agent call under a 60-s visibility timeout is refused, by the settings and so by a
    # worker at start-up, before it consumes anything.
    dangerous = {**VISIBILITY, "RUN_TIMEOUT": "70"}
    with pytest.raises(ConfigurationError, match="BROKER_VISIBILITY_TIMEOUT"):
        settings_for(chaos.settings_env(**dangerous))
    chaos.worker("refused", **dangerous)
    refused = chaos.processes.procs["refused"]
    wait_until(lambda: refused.poll() is not None, 60, message="the worker to refuse to start")
    assert refused.returncode != 0
    assert "must exceed RUN_TIMEOUT + LEASE_MARGIN" in chaos.processes.log("refused")

    chaos.env.update(VISIBILITY)
    slow = chaos.seed_one_shots(
        3,
        start=datetime.now(UTC) + timedelta(seconds=8),
        spread=timedelta(0),
        title="long",
        context={"simulate_delay_seconds": SLOW_RUN_S},
    )
    chaos.beat()
    chaos.worker("one-slot", WORKER_CONCURRENCY="1", MAX_IN_FLIGHT="1")
    wait_until(
        lambda: chaos.db.scalar("SELECT count(*) FROM task_runs WHERE state = 'running'"),
        60,
        message="the first long run to start",
    )
    broker = redis.Redis.from_url(chaos.redis.url)
    unacked = broker.zrange("unacked_index", 0, -1, withscores=True)
    assert len(unacked) == 1, unacked  # the one message the one-slot worker holds
    delivered_at = float(unacked[0][1])
    held = _received(chaos.processes.log("one-slot"))
    assert len(held) == 1, held
    message = held.pop()
    # Only now a second worker, and healthy tasks that it serves meanwhile.
    chaos.worker("second")
    healthy = chaos.seed_one_shots(
        20,
        start=datetime.now(UTC) + timedelta(seconds=3),
        spread=timedelta(seconds=45),
        title="healthy",
        context={"simulate_delay_seconds": 0.2},
    )

    time.sleep(max(0.0, delivered_at + 61 - time.time()))
    app = client_app(settings_for(chaos.env))
    with app.connection_for_write() as conn:
        conn.default_channel.qos.restore_visible(num=100)
    redelivered_after = time.time() - delivered_at
    restored = time.monotonic()

    wait_until(
        lambda: message in _received(chaos.processes.log("second")),
        15,
        message="the second worker to receive the same message",
    )
    wait_until(
        lambda: "runs_not_claimed" in chaos.processes.log("second"),
        15,
        message="the redelivered message to claim nothing",
    )
    states = dict(
        chaos.db.rows(
            "SELECT id, state FROM task_runs WHERE task_id = ANY(:ids)", ids=list(slow.fires_at)
        )
    )
    going = [run_id for run_id, state in states.items() if state == "running"]
    broker.close()

    load = Load({**slow.fires_at, **healthy.fires_at})
    recover = chaos.wait_caught_up(load, restored, timeout=40)
    assert chaos.settle(load, timeout=60), chaos.logs("one-slot", "second", "beat")
    core = chaos.processes.log("core")
    started = {
        run_id: len(re.findall(rf"event=run_started run_id={run_id} ", core)) for run_id in states
    }
    attempts = dict(
        chaos.db.rows(
            "SELECT id, attempt FROM task_runs WHERE task_id = ANY(:ids)",
            ids=list(slow.fires_at),
        )
    )
    outcome = chaos.outcome(
        load,
        recover,
        notes=(
            "message of 3 x 24-s runs held 72 s under a 60-s visibility timeout, redelivered "
            "while its last run was going: claimed nothing; a 70-s run is refused at start-up"
        ),
    )
    outcome.extra.update(
        {
            "redelivered_after_s": round(redelivered_after, 1),
            "running_at_redelivery": len(going),
            "agent_calls_per_long_run": sorted(started.values()),
            "attempts_per_long_run": sorted(attempts.values()),
        }
    )
    report.record(outcome)
    assert outcome.clean, outcome
    assert going, f"no long run was still going when the message came back: {states}"
    assert list(started.values()) == [1, 1, 1], started
    assert sorted(attempts.values()) == [1, 1, 1], attempts


def test_run_over_the_time_limit_fails_honestly(chaos: Chaos) -> None:
    chaos.env.update({"RUN_TIMEOUT": "3", "LEASE_MARGIN": "2"})
    start = datetime.now(UTC) + timedelta(seconds=10)
    window = timedelta(seconds=15)
    slow = chaos.seed_one_shots(
        12,
        start=start,
        spread=window,
        title="slow",
        context={"simulate_delay_seconds": 6},
        max_retries=2,
    )
    during = chaos.seed_one_shots(
        40, start=start, spread=window, title="during", context={"simulate_delay_seconds": 0.3}
    )
    # Three attempts of 3 s, with their back-off, end the last slow run within ~15 s.
    after = chaos.seed_one_shots(
        30,
        start=start + window + timedelta(seconds=18),
        spread=timedelta(seconds=10),
        title="after",
        context={"simulate_delay_seconds": 0.3},
    )
    chaos.beat()
    workers = {
        "threads": chaos.worker("threads"),
        "prefork": chaos.worker("prefork", WORKER_POOL="prefork", WORKER_CONCURRENCY="2"),
    }
    load = Load({**slow.fires_at, **during.fires_at, **after.fires_at})
    sleep_until(slow.last)
    assert chaos.settle(load, timeout=90), chaos.logs("threads", "prefork", "beat")

    timed_out = chaos.db.rows(
        "SELECT r.state, r.attempt, r.error, r.worker_id, t.status, t.status_reason "
        "FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id WHERE r.task_id = ANY(:ids)",
        ids=list(slow.fires_at),
    )
    reason = "failed after 3 attempts: the agent did not answer within 3 s"
    for run in timed_out:
        assert (run.state, run.attempt, run.error) == ("failed", 3, reason), run
        assert (run.status, run.status_reason) == ("failed", f"its run {reason}"), run
    failed_notes = chaos.db.scalar(
        "SELECT count(*) FROM notifications WHERE task_id = ANY(:ids) AND title LIKE 'Failed: %'",
        ids=list(slow.fires_at),
    )
    healthy_attempts = chaos.db.scalar(
        "SELECT max(attempt) FROM task_runs WHERE task_id = ANY(:ids)",
        ids=[*during.fires_at, *after.fires_at],
    )
    by_process = dict(
        chaos.db.rows(
            "SELECT split_part(worker_id, ':', 2), count(*) FROM task_runs "
            "WHERE task_id = ANY(:ids) GROUP BY 1",
            ids=list(after.fires_at),
        )
    )
    alive = {name: chaos.processes.procs[name].poll() is None for name in workers}
    core = chaos.processes.log("core")
    outcome = chaos.outcome(
        load,
        None,
        notes=(
            f"{len(timed_out)} runs of 6 s under RUN_TIMEOUT=3: each failed after 3 timed-out "
            "attempts; healthy runs during and after, on the same threads and prefork "
            "workers"
        ),
    )
    outcome.extra.update(
        {
            "during": _lateness(chaos, during),
            "after": _lateness(chaos, after),
            "runs_reaped": core.count("event=run_reaped"),
            "after_runs_by_process": by_process,
            "workers_alive": alive,
        }
    )
    report.record(outcome)
    assert outcome.clean, outcome
    assert failed_notes == 2 * len(timed_out)  # in-app and webhook, once each
    assert healthy_attempts == 1
    assert all(alive.values()), chaos.logs("threads", "prefork")  # the same processes
    for name in workers:
        assert "Traceback" not in chaos.processes.log(name), chaos.logs(name)


def _lateness(chaos: Chaos, load: Load) -> dict[str, float]:
    values = [
        float(v)
        for (v,) in chaos.db.rows(
            "SELECT extract(epoch FROM finished_at - scheduled_for) FROM task_runs "
            "WHERE task_id = ANY(:ids)",
            ids=list(load.fires_at),
        )
    ]
    return {"median_s": round(median(values), 2), "worst_s": round(max(values), 2)}
