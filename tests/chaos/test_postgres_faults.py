"""Scenario 3: PostgreSQL restarted under load; PostgreSQL unreachable for 30 s.

The suite's cluster (``chaos_pg``) is shared by the scenarios of a session, which run one after
the other: a scenario may stop it, and starts it again before it ends, whatever happens.

* **Restarted** three times while the scheduler claims and workers write results, alternately
  with ``pg_ctl -m fast`` (every client disconnected) and ``-m immediate`` (a crash, recovered
  at start-up). Pooled connections go stale: ``pool_pre_ping`` replaces them at checkout. A
  tick that fails is retried after a pause; a claim that fails leaves its runs ``queued`` and
  the dispatcher re-sends them; a result that cannot be stored leaves its run ``running`` until
  the reaper retries it when its lease ends; a notification whose delivery cannot be recorded
  is delivered again, under the same idempotency key.
* **Unreachable for 30 s**: stopped, started again 30 s later; connections are refused meanwhile.

Each ends with the invariants of :meth:`Chaos.outcome` and the checks of
:func:`chaos.recovery.finish`: no process exited, every worker takes runs again after the last
fault, and none still logs failures once the database has been back a while. Time to
recover: from PostgreSQL answering again to every firing due by then having a final run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from chaos import recovery
from chaos.harness import Chaos, sleep_until
from chaos.servers import PostgresServer


@pytest.fixture
def pg(chaos_pg: PostgresServer) -> Iterator[PostgresServer]:
    """The suite's cluster, up again when the scenario ends (the next one needs it)."""
    try:
        yield chaos_pg
    finally:
        if not chaos_pg.ping():
            chaos_pg.start()


def _commit_durably(chaos: Chaos) -> None:
    """Commits of this scenario's database survive a crash of PostgreSQL, as in production.

    The suite's cluster runs with ``synchronous_commit=off`` for speed: a crash (``pg_ctl -m
    immediate``) then loses the transactions acknowledged in its last few hundred
    milliseconds, by design. A run stored as succeeded, its notification already delivered,
    came back as running and ran again. No system can keep its promises on a database that
    forgets acknowledged commits, and production databases do not; this scenario's database
    waits for its commits to reach the WAL, as production does (``fsync`` stays off: a crash
    of the server's processes, not of the machine, keeps what was written).
    """
    name = chaos.db.scalar("SELECT current_database()")
    chaos.db.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')


def test_postgres_restarted(pg: PostgresServer, chaos: Chaos) -> None:
    _commit_durably(chaos)
    load = recovery.start(chaos, 120, spread=timedelta(seconds=32))
    sleep_until(load.first + timedelta(seconds=3))
    modes = ("fast", "immediate", "fast")
    for i, mode in enumerate(modes):
        if i:
            time.sleep(7)
        pg.restart(mode)
    recovery.finish(
        chaos,
        load,
        notes=f"{len(modes)} restarts of PostgreSQL ({', '.join(modes)}) under load",
    )


def test_postgres_unreachable_for_30s(pg: PostgresServer, chaos: Chaos) -> None:
    _commit_durably(chaos)
    load = recovery.start(chaos, 90, spread=timedelta(seconds=45))
    sleep_until(load.first + timedelta(seconds=5))
    pg.stop("fast")
    time.sleep(30)
    pg.start()
    recovery.finish(
        chaos,
        load,
        notes="PostgreSQL stopped for 30 s, connections refused",
    )
