"""Scenario 2: Redis killed and restarted empty under load; Redis unreachable for 30 s.

Redis is only a transport here: every run and notification that is owed is a database row.

* **Killed and restarted empty** (SIGKILL, then a new empty ``redis-server`` on the same port),
  three times while runs are queued and running. Queued and reserved messages vanish, with
  kombu's queue bindings. The dispatcher re-sends queued runs whose dispatch lease ran out,
  the reaper re-sends pending notifications, and workers and beat reconnect on their own.
* **Unreachable for 30 s**, two ways: ``paused`` (SIGSTOP: the port still accepts connections
  but nothing answers, so calls hang instead of failing) and ``down`` (killed, and started
  again empty 30 s later: connections are refused meanwhile).

Each ends with the invariants of :meth:`Chaos.outcome` and the checks of
:func:`chaos.recovery.finish`: no process exited, every worker takes runs again after the last
fault, and none still logs broker trouble once Redis has been back a while. Time to recover:
from Redis answering again to every firing due by then having a final run.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from chaos import recovery
from chaos.harness import Chaos, sleep_until


def test_redis_killed_and_restarted_empty(chaos: Chaos) -> None:
    load = recovery.start(chaos, 120, spread=timedelta(seconds=32))
    sleep_until(load.first + timedelta(seconds=3))
    restarts = 3
    for restart in range(restarts):
        if restart:
            time.sleep(7)
        chaos.redis.kill()
        time.sleep(1.0)
        chaos.redis.start()
    recovery.finish(
        chaos,
        load,
        notes=f"{restarts} restarts of Redis (SIGKILL, then empty) under load",
    )


@pytest.mark.parametrize("how", ["paused", "down"])
def test_redis_unreachable_for_30s(chaos: Chaos, how: str) -> None:
    load = recovery.start(chaos, 90, spread=timedelta(seconds=45))
    sleep_until(load.first + timedelta(seconds=5))
    if how == "paused":
        chaos.redis.pause()
        time.sleep(30)
        chaos.redis.resume()
    else:
        chaos.redis.kill()
        time.sleep(30)
        chaos.redis.start()
    recovery.finish(
        chaos,
        load,
        notes="Redis unreachable for 30 s: "
        + ("SIGSTOP, calls hang" if how == "paused" else "down, connections refused"),
    )
