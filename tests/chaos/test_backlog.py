"""``run_now`` under a 10,000-message backlog: a run that was never sent is sent at once, not
after the queue drains (issue 9, item 3).

Beat claims 10,000 one-shot tasks, one run per message (``RUNS_PER_MESSAGE=1``), while no
worker consumes: 10,000 messages wait in the ``ai_tasks`` queue. Then the owner asks for an
extra run of another task (``AITaskManager.run_now``). Its message must reach the broker within
a few scheduler ticks, backlog or not: the test looks for it among the newest messages of the
queue's Redis list (kombu pushes at the head, workers pop at the tail). Then two workers start
and everything drains: every run once, the agent (a local chat server) called once per
attempt.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import redis

from chaos import report
from chaos.harness import Chaos, seed_one_shots_bulk
from personal_assistant.tasks.manager import AITaskManager
from support.celery_messages import message_body
from support.chat_server import AlwaysAnswer
from support.processes import wait_until
from support.stack import settings_for

BACKLOG = 10_000
QUEUE = "ai_tasks"
#: Ticks are 0.2 s (SCHEDULER_TICK_SECONDS); "a few ticks", generously, on a busy machine.
SENT_WITHIN_S = 15.0
NEWEST = 1000  # messages read from the head of the queue when looking for the run's


def _message_runs(raw: bytes | str) -> list[int]:
    """The run ids a Celery message on Redis carries (its body: ``[[run_ids], {}, {...}]``)."""
    args = message_body(json.loads(raw))[0]
    ids = args[0] if args else []
    return [ids] if isinstance(ids, int) else [int(i) for i in ids]


def _sent(client: redis.Redis, run_id: int) -> bool:
    return any(run_id in _message_runs(raw) for raw in client.lrange(QUEUE, 0, NEWEST - 1))


def _extra_task(chaos: Chaos) -> int:
    """A one-shot task due in a day: its only run in this test is the one asked for now."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    async def go() -> int:
        async with AITaskManager(settings_for(chaos.env)) as manager:
            task = await manager.create_task(
                chaos.user_id,
                "asked for now",
                task_type="periodic_task",
                schedule={"kind": "once", "at": tomorrow.isoformat()},
                notification_channels=["in_app"],
            )
            return task.id

    return asyncio.run(go())


def _run_now(chaos: Chaos, task_id: int) -> int:
    async def go() -> int:
        async with AITaskManager(settings_for(chaos.env)) as manager:
            run = await manager.run_now(task_id, chaos.user_id)
            return run.id

    return asyncio.run(go())


def test_run_now_under_backlog(chaos: Chaos) -> None:
    with AlwaysAnswer() as server:
        chaos.env.update(
            {"AGENT": "openai", "AGENT_BASE_URL": server.base_url, "RUNS_PER_MESSAGE": "1"}
        )
        client = redis.Redis.from_url(chaos.redis.url)
        target = _extra_task(chaos)
        load = seed_one_shots_bulk(
            chaos,
            BACKLOG,
            at=datetime.now(UTC) + timedelta(seconds=2),
            title="backlog",
            channels=["in_app"],
        )
        chaos.beat()
        wait_until(lambda: client.llen(QUEUE) >= BACKLOG, 120, interval=0.5, message="the backlog")
        run_id = _run_now(chaos, target)
        asked = time.monotonic()
        sent_s: float | None = None
        while time.monotonic() - asked < SENT_WITHIN_S:
            if _sent(client, run_id):
                sent_s = time.monotonic() - asked
                break
            time.sleep(0.2)
        waiting = int(client.llen(QUEUE))
        drain = time.monotonic()
        for name in ("w1", "w2"):
            chaos.worker(name)
        settled = chaos.settle(load, timeout=180)
        drained_s = time.monotonic() - drain
        sent = f"sent after {sent_s:.1f} s" if sent_s is not None else "not sent"
        notes = (
            f"run_now {sent} (asked with {waiting} messages waiting, no worker); "
            f"then {BACKLOG + 1} runs drained by 2 workers in {drained_s:.0f} s"
        )
        settled = settled and wait_until(
            lambda: chaos.db.scalar(
                "SELECT count(*) FROM task_runs WHERE task_id = :t AND state = 'succeeded'",
                t=target,
            ),
            60,
            message="the run asked for now to succeed",
        )
        outcome = chaos.outcome(load, None, notes=notes, agent=server)
        extra_run = chaos.db.rows(
            "SELECT id, state, attempt FROM task_runs WHERE task_id = :t", t=target
        )
    outcome.scheduled += 1
    outcome.completed += sum(1 for r in extra_run if r.state == "succeeded")
    outcome.duplicated += max(0, len(extra_run) - 1)
    outcome.extra.update(
        sent_s=None if sent_s is None else round(sent_s, 2),
        waiting=waiting,
        drained_s=round(drained_s, 1),
        run_now=[tuple(r) for r in extra_run],
    )
    report.record(outcome)
    assert settled, chaos.logs("w1", "w2", "beat")
    assert outcome.clean, outcome
    assert outcome.agent_calls_per_attempt == 1, outcome
    assert [(r.id, r.state) for r in extra_run] == [(run_id, "succeeded")], extra_run
    assert sent_s is not None, f"the run asked for now was not sent within {SENT_WITHIN_S} s"
