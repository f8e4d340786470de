"""Scenarios 2, 1 and 4 on RabbitMQ: broker killed and restarted, workers killed, 3 schedulers.

The broker is RabbitMQ (``CELERY_BROKER_URL=amqp://``); the Redis server of :class:`Chaos` is
only the result backend. Load and invariants are those of the Redis scenarios
(:meth:`Chaos.outcome`: every firing one run, every run final, every notification delivered
once, counted from the database), on smaller loads to keep the suite's time down:

* **Killed and restarted**: a RabbitMQ node of the scenario's own (:class:`RabbitMQServer`)
  with quorum queues, SIGKILLed twice under load and started again on its data. Unlike an empty
  Redis, it keeps its queues and the messages it confirmed; the messages workers held
  unacknowledged come back, and a run whose message was lost is sent again from the database.
  Workers and beat reconnect on their own (the checks of :func:`chaos.recovery.finish`), and
  more one-shots fire after the outage, however long the node took to boot.
* **Workers killed mid run**: on quorum queues, a worker is killed with SIGKILL every few
  seconds and a new one started; RabbitMQ hands the messages it held to another worker (each
  return counts against the delivery limit), and runs it had claimed are retried once their
  lease runs out (a heartbeat every second here: a 5-s lease).
* **Three schedulers**: three scheduler loops and beat claim 500 tasks due in the same second,
  50 at a time (``SCHEDULER_BATCH``, so that the claims split), on classic queues: one run per
  firing whoever claimed it. The owed-run check of each reads the queue's depth with a passive
  declare; the row's notes say how many runs were sent again anyway.

The machine's RabbitMQ is never stopped: the two scenarios without a broker fault use a virtual
host of their own on it (:func:`support.rabbitmq.vhost`).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chaos import recovery, report
from chaos.harness import Chaos, Load, seed_one_shots_bulk, seed_one_shots_spread_bulk, sleep_until
from chaos.servers import RabbitMQServer
from chaos.test_many_schedulers import CLAIMED, LOOP, RESENT, TESTS_DIR
from support import rabbitmq

RESTARTS = 2
#: One-shots firing over 8 s after the broker's restarts (``test_rabbitmq_killed_and_restarted``).
AFTER_OUTAGE = 20
BURST = 500
BURST_WEBHOOK = 50
SCHEDULERS = 3
CLAIM_BATCH = 50


@pytest.fixture
def rabbitmq_node() -> Iterator[RabbitMQServer]:
    """A RabbitMQ node of the test's own, that it may kill."""
    if not RabbitMQServer.available():
        if os.environ.get("CI"):
            pytest.fail("rabbitmq-server is missing, and CI is set: the chaos suite needs it")
        pytest.skip("rabbitmq-server is missing")
    with RabbitMQServer() as node:
        yield node


@pytest.fixture
def vhost_url() -> Iterator[str]:
    """A virtual host of the test's own on the machine's RabbitMQ (never stopped here)."""
    with rabbitmq.vhost("pa-chaos") as url:
        yield url


def _on_rabbitmq(chaos: Chaos, url: str, *, quorum: bool, **env: str) -> str:
    """Point the scenario's processes at RabbitMQ; the broker as the row's notes name it."""
    chaos.env.update({"CELERY_BROKER_URL": url, "BROKER_QUORUM_QUEUES": str(quorum).lower(), **env})
    kind = "quorum" if quorum else "classic"
    return f"RabbitMQ {rabbitmq.server_version(url)}, {kind} queues"


def test_rabbitmq_killed_and_restarted(rabbitmq_node: RabbitMQServer, chaos: Chaos) -> None:
    broker = _on_rabbitmq(chaos, rabbitmq_node.url, quorum=True)
    load = recovery.start(chaos, 100, spread=timedelta(seconds=26))
    sleep_until(load.first + timedelta(seconds=3))
    began = time.monotonic()
    for restart in range(RESTARTS):
        if restart:
            time.sleep(3)
        rabbitmq_node.kill()
        time.sleep(1.0)
        rabbitmq_node.start()
    outage = time.monotonic() - began
    # Firings after the outage, however long the node took to boot: each worker must take some.
    # When the boots took most of the load's 26 s, the runs owed were sent at once as the first
    # worker came back, and it took them all before the other was consuming again (a
    # fresh-clone CI of db14141: one worker ran the 40 runs after the outage, the other none).
    after = seed_one_shots_spread_bulk(
        chaos,
        AFTER_OUTAGE,
        start=datetime.now(UTC) + timedelta(seconds=3),
        spread=timedelta(seconds=8),
        title="after the outage",  # titles of their own: the webhook tells notes by content
        context={"simulate_delay_seconds": 1.0},
    )
    recovery.finish(
        chaos,
        Load({**load.fires_at, **after.fires_at}),
        notes=f"{broker}: {RESTARTS} restarts of RabbitMQ (SIGKILL, then started on its data) "
        f"under load, back after {outage:.0f} s; {AFTER_OUTAGE} more firings after it",
    )


def test_rabbitmq_workers_killed_mid_run(vhost_url: str, chaos: Chaos) -> None:
    broker = _on_rabbitmq(chaos, vhost_url, quorum=True, HEARTBEAT_INTERVAL="1")
    chaos.beat()
    live = ["w0a", "w0b"]
    for name in live:
        chaos.worker(name)
    for name in live:
        chaos.wait_ready(name)
    load = seed_one_shots_spread_bulk(
        chaos,
        100,
        start=datetime.now(UTC) + timedelta(seconds=2),
        spread=timedelta(seconds=14),
        context={"simulate_delay_seconds": 1.0},
    )
    sleep_until(load.first + timedelta(seconds=2))
    kills = 0
    while datetime.now(UTC) < load.last - timedelta(seconds=2):
        chaos.processes.kill(live.pop(0), signal.SIGKILL)
        kills += 1
        replacement = f"w{kills}"
        chaos.worker(replacement)
        live.append(replacement)
        time.sleep(2)
        chaos.wait_ready(replacement)  # the next victim is a worker that is consuming
    recover = chaos.wait_caught_up(load, time.monotonic(), timeout=60)
    assert chaos.settle(load, timeout=90), chaos.logs(*live)
    outcome = chaos.outcome(
        load, recover, notes=f"{broker}: {kills} workers killed with SIGKILL (5-s leases)"
    )
    report.record(outcome)
    assert outcome.clean, outcome


def test_rabbitmq_three_schedulers_500_due(vhost_url: str, chaos: Chaos) -> None:
    # Claims of 50: the burst takes ten of them, for the processes to split.
    broker = _on_rabbitmq(chaos, vhost_url, quorum=False, SCHEDULER_BATCH=str(CLAIM_BATCH))
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=11)
    in_app = seed_one_shots_bulk(
        chaos, BURST - BURST_WEBHOOK, at=at, title="burst", channels=["in_app"]
    )
    hooked = seed_one_shots_bulk(chaos, BURST_WEBHOOK, at=at, title="burst-hook")
    load = Load({**in_app.fires_at, **hooked.fires_at})
    assert len(load.fires_at) == BURST

    paths = [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = chaos.settings_env(PYTHONPATH=os.pathsep.join(paths))
    schedulers = [f"scheduler{i}" for i in range(SCHEDULERS)]
    for name in schedulers:
        chaos.processes.start(name, [sys.executable, "-c", LOOP], env)
    chaos.beat()
    for name in ("wa", "wb"):
        chaos.worker(name)

    sleep_until(at)
    fired = time.monotonic()
    settled = chaos.settle(load, timeout=60)
    completed_s = time.monotonic() - fired if settled else None

    names = [*schedulers, "beat"]
    alive = [name for name in names if chaos.processes.procs[name].poll() is None]
    logs = {name: chaos.processes.log(name) for name in names}
    claims = {name: _total(CLAIMED, log) for name, log in logs.items()}
    resent = sum(_total(RESENT, log) for log in logs.values())
    outcome = chaos.outcome(
        load,
        completed_s,
        notes=(
            f"{broker}: {SCHEDULERS} schedulers + beat + 2 workers; {BURST} due at once, "
            f"claimed {CLAIM_BATCH} at a time; "
            f"completed and notified in {_secs(completed_s)} s; {resent} runs sent again"
        ),
    )
    outcome.extra.update(
        {
            "claims_by_process": claims,
            "runs_sent_again": resent,
            "messages_left_in_queue": rabbitmq.depth(vhost_url, "ai_tasks"),
        }
    )
    report.record(outcome)
    assert outcome.clean, outcome
    assert sum(claims.values()) == BURST, claims  # each firing claimed by exactly one process
    assert alive == names, chaos.logs(*names)


def _total(pattern: re.Pattern[str], log: str) -> int:
    return sum(int(n) for n in pattern.findall(log))


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
