"""Scenario: the workers consuming ``ai_tasks`` stop, and the admin is told once, then once more.

The built-in alert evaluator (``evaluate_alerts`` on ``maintenance_tasks``, sent by beat every
``ALERT_INTERVAL_SECONDS``) watches a deployment of real processes: one worker on ``ai_tasks``,
one on the four other queues, and beat, on the scenario's own PostgreSQL and Redis. The scenario's
user is an admin with a webhook channel. The ``ai_tasks`` worker is stopped (SIGTERM, a warm
shutdown), and a new one started after the alert opened. What must happen:

* nothing is told while the deployment is healthy, start-up included;
* the webhook receives exactly one "opened" alert, ``NoConsumerOnQueue`` on ``ai_tasks``, once
  the worker's heartbeat is stale (3 beats) and the condition has held
  ``ALERT_OPEN_AFTER_SECONDS``, however many evaluations run meanwhile;
* once a worker consumes ``ai_tasks`` again, exactly one "resolved", and nothing after it.

A notification may reach the webhook twice under one ``Idempotency-Key`` (at-least-once
delivery, dropped by the key); two keys for one alert would be a storm, and fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chaos.harness import Chaos

HEARTBEAT_S = 1.0
OPEN_AFTER_S = 5.0
INTERVAL_S = 1.0
#: The most the alert may take to reach the webhook after the worker stopped: its heartbeat
#: goes stale (3 beats), the condition holds OPEN_AFTER_S, then an evaluation and a delivery
#: (each a Celery message and a commit); the rest is room for a loaded 2-core machine.
TOLD_WITHIN_S = 3 * HEARTBEAT_S + OPEN_AFTER_S + 30.0
#: Quiet spells checked: long enough for several evaluations past the open delay.
QUIET_S = OPEN_AFTER_S + 5 * INTERVAL_S

ENV = {
    "HEARTBEAT_INTERVAL": str(HEARTBEAT_S),
    "ALERT_INTERVAL_SECONDS": str(INTERVAL_S),
    "ALERT_OPEN_AFTER_SECONDS": str(OPEN_AFTER_S),
    "ALERT_COOLDOWN_SECONDS": "3600",
}
OTHER_QUEUES = "email_tasks,file_tasks,sync_tasks,maintenance_tasks"


def told(chaos: Chaos) -> list[tuple[str, str | None]]:
    """(title, Idempotency-Key) of every alert the webhook accepted, in order."""
    accepted = [
        key
        for (_, status), key in zip(chaos.hook.requests, chaos.hook.keys, strict=True)
        if 200 <= status < 300
    ]
    return [
        (str(body.get("title")), key)
        for body, key in zip(list(chaos.hook.received), accepted, strict=False)
    ]


def distinct(chaos: Chaos, matches: Callable[[str], bool]) -> set[str | None]:
    return {key for title, key in told(chaos) if matches(title)}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def live_consumers(chaos: Chaos, queue: str) -> int:
    """Workers whose heartbeat is fresh (3 beats) and who consume ``queue``."""
    return int(
        chaos.db.scalar(
            "SELECT count(*) FROM worker_heartbeats WHERE role = 'worker' "
            "AND beat_at > now() - make_interval(secs => :age) "
            "AND (',' || queues || ',') LIKE :queue",
            age=3 * HEARTBEAT_S,
            queue=f"%,{queue},%",
        )
    )


def test_ai_workers_stopped_tells_the_admin_once(chaos: Chaos) -> None:
    chaos.db.execute("UPDATE users SET is_admin = true WHERE id = :id", id=chaos.user_id)
    chaos.worker("ai", extra=["-Q", "ai_tasks", "-c", "2"], **ENV)
    chaos.wait_ready("ai")
    chaos.worker("ops", extra=["-Q", OTHER_QUEUES, "-c", "4"], **ENV)
    chaos.wait_ready("ops")
    chaos.beat(**ENV)
    wait_for(lambda: live_consumers(chaos, "ai_tasks") == 1, 30, "the ai_tasks worker beats")
    wait_for(
        lambda: "evaluate_alerts" in chaos.logs("ops"), 30, "the evaluator runs on maintenance"
    )
    time.sleep(QUIET_S)
    assert told(chaos) == [], "an alert was told while the deployment was healthy"

    stopped_at = time.monotonic()
    chaos.processes.kill("ai", 15)  # SIGTERM: a warm shutdown, as an operator would stop it
    opened = "No live worker consumes ai_tasks"
    wait_for(lambda: bool(distinct(chaos, lambda t: opened in t)), TOLD_WITHIN_S, "opened")
    opened_after = time.monotonic() - stopped_at
    time.sleep(QUIET_S)
    assert len(distinct(chaos, lambda t: opened in t)) == 1, told(chaos)
    assert all(opened in title for title, _ in told(chaos)), told(chaos)
    assert not distinct(chaos, lambda t: t.startswith("[resolved]"))
    # The stale heartbeat and the open delay both passed before the admin was told.
    assert opened_after >= OPEN_AFTER_S

    chaos.worker("ai2", extra=["-Q", "ai_tasks", "-c", "2"], **ENV)
    chaos.wait_ready("ai2")
    wait_for(
        lambda: bool(distinct(chaos, lambda t: t.startswith("[resolved]"))),
        TOLD_WITHIN_S,
        "resolved",
    )
    time.sleep(QUIET_S)
    titles = [title for title, _ in told(chaos)]
    assert len(distinct(chaos, lambda t: t.startswith("[resolved]"))) == 1, titles
    assert len(distinct(chaos, lambda t: opened in t and not t.startswith("[resolved]"))) == 1
    assert set(titles) == {f"[critical] {opened}", f"[resolved] {opened}"}

    states = chaos.db.rows("SELECT key, status, opened_at IS NOT NULL FROM alerts ORDER BY id")
    assert [tuple(row) for row in states] == [("NoConsumerOnQueue:ai_tasks", "resolved", True)]
    in_app = chaos.db.scalar(
        "SELECT count(*) FROM notifications WHERE channel = 'in_app' AND dedupe_key LIKE 'alert:%'"
    )
    assert in_app == 2  # the admin's inbox holds the same two
    print(f"\nalert opened {opened_after:.1f} s after the ai_tasks worker stopped")
