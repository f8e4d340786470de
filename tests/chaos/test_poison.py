"""Scenario 6: poison tasks among healthy ones.

Each test runs two phases of the same healthy load on the same stack: one alone, one with
poison tasks among it, and reports the healthy runs' lateness (finished minus scheduled) in
both. A poison task is recurring (every minute) and its owner keeps asking for another run
(``AITaskManager.run_now``) as soon as the last one has ended: it must fail honestly (the
agent's reason in the run and its notification, retried as configured when the error is
transient), be paused when its ``PAUSE_AFTER_FAILURES``-th (3rd) run in a row fails, and no
longer fire, even when due (a run already in flight then still fails, and is counted). Poison
tasks notify in-app only: their failure notifications are alike from run to run, and the
webhook check counts alike bodies as duplicates.

* ``test_poison_agent_errors``: the offline agent raises for them, permanently (one attempt a
  run) or transiently (three attempts a run, ``max_retries=2``).
* ``test_poison_invalid_replies``: the OpenAI-compatible agent against a local chat server that
  answers the poison tasks with malformed JSON, and some healthy one-shot tasks with replies a
  run cannot store as they are: a NUL character or a lone surrogate in the answer, a 300-letter
  model name, a token count beyond a PostgreSQL integer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any

from chaos import report
from chaos.harness import Chaos, Load, sleep_until
from personal_assistant.tasks.manager import AITaskManager
from support.chat_server import ChatServer, Received, Reply, completion
from support.processes import wait_until
from support.stack import settings_for

HEALTHY = 60
PHASE = timedelta(seconds=18)
PAUSE_AFTER = 3
POISON_CRON = {"kind": "cron", "expression": "* * * * *"}


@dataclass(frozen=True)
class Poison:
    task_id: int
    name: str
    attempts_per_run: int
    reason: str  # in every failed run's error


def _create(
    chaos: Chaos,
    title: str,
    context: dict[str, Any],
    max_retries: int,
    schedule: dict[str, Any] = POISON_CRON,
) -> int:
    async def go() -> int:
        async with AITaskManager(settings_for(chaos.env)) as manager:
            task = await manager.create_task(
                chaos.user_id,
                title,
                task_type="periodic_task",
                schedule=schedule,
                ai_context=context,
                notification_channels=["in_app"],
                max_retries=max_retries,
            )
            return task.id

    return asyncio.run(go())


def _fire_at(chaos: Chaos, task_ids: Iterable[int], at: datetime) -> None:
    """Bring the poison tasks' first firing forward to ``at`` (their next is a minute later)."""
    chaos.db.execute(
        "UPDATE ai_tasks SET next_run_at = :at WHERE id = ANY(:ids)", at=at, ids=list(task_ids)
    )


def _run_now(chaos: Chaos, task_id: int) -> None:
    async def go() -> None:
        async with AITaskManager(settings_for(chaos.env)) as manager:
            await manager.run_now(task_id, chaos.user_id)

    asyncio.run(go())


def _keep_running(chaos: Chaos, poisons: list[Poison], *, timeout: float) -> int:
    """Ask for another run of each active poison task whose last run has ended, until every one
    is paused; returns how many runs were asked for."""
    deadline = time.monotonic() + timeout
    asked = 0
    while time.monotonic() < deadline:
        rows = chaos.db.rows(
            "SELECT t.id, t.status, count(r.id) AS runs, "
            "count(r.id) FILTER (WHERE r.state NOT IN ('succeeded', 'failed', 'skipped')) "
            "AS open FROM ai_tasks t LEFT JOIN task_runs r ON r.task_id = t.id "
            "WHERE t.id = ANY(:ids) GROUP BY t.id, t.status",
            ids=[p.task_id for p in poisons],
        )
        if all(row.status == "paused" for row in rows):
            return asked
        for row in rows:
            if row.status == "active" and row.runs > 0 and row.open == 0:
                _run_now(chaos, row.id)
                asked += 1
        time.sleep(0.3)
    return asked


def _lateness(chaos: Chaos, load: Load) -> dict[str, float | None]:
    """Median and worst of finished minus scheduled, over the load's runs, in seconds."""
    values = [
        float(v)
        for (v,) in chaos.db.rows(
            "SELECT extract(epoch FROM finished_at - scheduled_for) FROM task_runs "
            "WHERE task_id = ANY(:ids) AND finished_at IS NOT NULL",
            ids=list(load.fires_at),
        )
    ]
    if not values:
        return {"median_s": None, "worst_s": None}
    return {"median_s": round(median(values), 2), "worst_s": round(max(values), 2)}


def _failed_since_success(chaos: Chaos, task_id: int) -> int:
    """The task's runs that ended ``failed`` after its last success: what
    ``consecutive_failures`` counts (docs/explanation-run-states.md)."""
    return int(
        chaos.db.scalar(
            "SELECT count(*) FROM task_runs WHERE task_id = :t AND state = 'failed' "
            "AND finished_at > coalesce((SELECT max(finished_at) FROM task_runs "
            "WHERE task_id = :t AND state = 'succeeded'), '-infinity')",
            t=task_id,
        )
    )


def _check_poisons(chaos: Chaos, poisons: list[Poison]) -> dict[str, Any]:
    """Each poison task: paused when its PAUSE_AFTER-th run failed, each run failed honestly and
    notified once; a due firing of a paused task does not run.

    A run already in flight when the task paused (its cron firing came while a ``run_now`` run
    was failing) still runs and fails after the pause: it counts in ``consecutive_failures``,
    which may then exceed PAUSE_AFTER. No run may be created after the pause.
    """
    seen: dict[str, Any] = {}
    for poison in poisons:
        task = chaos.db.rows(
            "SELECT status, status_reason, consecutive_failures FROM ai_tasks WHERE id = :t",
            t=poison.task_id,
        )[0]
        runs = chaos.db.rows(
            "SELECT id, state, attempt, error, queued_at, finished_at FROM task_runs "
            "WHERE task_id = :t ORDER BY id",
            t=poison.task_id,
        )
        assert task.status == "paused", (poison, task)
        assert task.status_reason.startswith(
            f"paused after {PAUSE_AFTER} consecutive failed runs; last: failed after "
            f"{poison.attempts_per_run} attempt"
        ), task.status_reason
        assert poison.reason in task.status_reason, task.status_reason
        failed = _failed_since_success(chaos, poison.task_id)
        assert task.consecutive_failures == failed >= PAUSE_AFTER, (task, failed, runs)
        assert len(runs) >= PAUSE_AFTER, (poison, runs)
        paused_at = sorted(run.finished_at for run in runs)[PAUSE_AFTER - 1]
        assert all(run.queued_at <= paused_at for run in runs), ("a run after the pause", runs)
        for run in runs:
            assert run.state == "failed", run
            assert run.attempt == poison.attempts_per_run, (poison, run)
            assert run.error.startswith(f"failed after {poison.attempts_per_run} attempt"), run
            assert poison.reason in run.error, run
        notes = chaos.db.rows(
            "SELECT run_id, status, title FROM notifications WHERE task_id = :t",
            t=poison.task_id,
        )
        assert sorted(n.run_id for n in notes) == [r.id for r in runs], notes
        assert all(n.status == "delivered" and n.title.startswith("Failed: ") for n in notes)
        seen[poison.name] = {"runs": len(runs), "attempts": sum(r.attempt for r in runs)}
    # Due again while paused: the scheduler must leave it alone. A task due just after them
    # shows when the scheduler has claimed everything due by then.
    ids = [p.task_id for p in poisons]
    before = chaos.db.scalar("SELECT count(*) FROM task_runs WHERE task_id = ANY(:ids)", ids=ids)
    later = datetime.now(UTC) + timedelta(seconds=1)
    marker = _create(chaos, "marker", {}, 0, schedule={"kind": "once", "at": later.isoformat()})
    _fire_at(chaos, ids, later - timedelta(seconds=0.5))
    wait_until(
        lambda: chaos.db.scalar("SELECT count(*) FROM task_runs WHERE task_id = :t", t=marker),
        30,
        message="the scheduler to claim the marker task",
    )
    after = chaos.db.scalar("SELECT count(*) FROM task_runs WHERE task_id = ANY(:ids)", ids=ids)
    assert after == before, "a paused task fired"
    return seen


def _two_phases(
    chaos: Chaos,
    poisons: list[Poison],
    extra: Callable[[datetime], Load] | None = None,
    **load_options: Any,
) -> tuple[Load, dict[str, Any]]:
    """Phase 1: the healthy load alone. Phase 2: the same load with the poison tasks firing
    at its start, and the one-shots ``extra(start)`` seeds. Returns every one-shot and the
    figures."""
    start = datetime.now(UTC) + timedelta(seconds=8)
    alone = chaos.seed_one_shots(HEALTHY, start=start, spread=PHASE, title="alone", **load_options)
    second = alone.last + timedelta(seconds=4)
    mixed = chaos.seed_one_shots(HEALTHY, start=second, spread=PHASE, title="mixed", **load_options)
    added = extra(second) if extra is not None else Load({})
    _fire_at(chaos, [p.task_id for p in poisons], second)
    chaos.beat()
    chaos.worker("w1")
    chaos.worker("w2")
    sleep_until(second)
    asked = _keep_running(chaos, poisons, timeout=60)
    everything = Load({**alone.fires_at, **mixed.fires_at, **added.fires_at})
    assert chaos.settle(everything, timeout=60), chaos.logs("w1", "w2", "beat")
    figures = {
        "healthy_alone": _lateness(chaos, alone),
        "healthy_with_poison": _lateness(chaos, mixed),
        "run_now_asked": asked,
        "poison": _check_poisons(chaos, poisons),
    }
    return everything, figures


def _notes(figures: dict[str, Any], what: str) -> str:
    alone, mixed = figures["healthy_alone"], figures["healthy_with_poison"]
    return (
        f"{what}: paused after {PAUSE_AFTER} failed runs; healthy lateness median/worst "
        f"{alone['median_s']}/{alone['worst_s']} s alone, "
        f"{mixed['median_s']}/{mixed['worst_s']} s with poison"
    )


def test_poison_agent_errors(chaos: Chaos) -> None:
    poisons = [
        Poison(
            _create(
                chaos,
                f"poison-permanent {i}",
                {"simulate_failure": "poisoned", "simulate_failure_permanent": True},
                max_retries=2,
            ),
            f"permanent {i}",
            attempts_per_run=1,
            reason="simulated failure: poisoned",
        )
        for i in range(2)
    ] + [
        Poison(
            _create(chaos, f"poison-transient {i}", {"simulate_failure": "poisoned"}, 2),
            f"transient {i}",
            attempts_per_run=3,
            reason="simulated failure: poisoned",
        )
        for i in range(2)
    ]
    load, figures = _two_phases(chaos, poisons, context={"simulate_delay_seconds": 0.3})
    outcome = chaos.outcome(
        load, None, notes=_notes(figures, "agent raising (2 permanent, 2 transient)")
    )
    outcome.extra.update(figures)
    report.record(outcome)
    assert outcome.clean, outcome


# --- invalid replies through the OpenAI-compatible agent ------------------------------------

INVALID = {
    # title prefix: the reply's text, model and prompt token count
    "nul": ("Half an answer\x00and the rest.", "test-model", 42),
    "surrogate": ("An emoji cut in half: \ud83d and the rest.", "test-model", 42),
    "model": ("A fine answer from a model with a long name.", "m" * 300, 42),
    "tokens": ("A fine answer with an impossible token count.", "test-model", 2**40),
}


class PoisonChat(ChatServer):
    """Answers by the task's title: malformed JSON for ``poison-json``, the ``INVALID`` replies
    for ``invalid-<kind>`` tasks, a proper completion naming the task for the others."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, int] = {}

    def _next(self, received: Received) -> Reply:
        title = _title(received.body)
        with self._lock:
            self.asked[title] = self.asked.get(title, 0) + 1
        if title.startswith("poison-json"):
            return Reply(200, b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "Ha')
        if title.startswith("invalid-"):
            text, model, tokens = INVALID[title.split()[0].removeprefix("invalid-")]
            return completion(text, model=model, prompt_tokens=tokens)
        return completion(f"The answer for {title}.")


def _title(body: Any) -> str:
    try:
        prompt = body["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    first = str(prompt).splitlines()[0]
    return first.removeprefix("Task: ").strip()


def test_poison_invalid_replies(chaos: Chaos) -> None:
    with PoisonChat() as server:
        chaos.env.update({"AGENT": "openai", "AGENT_BASE_URL": server.base_url})
        poisons = [
            Poison(
                _create(chaos, f"poison-json {i}", {}, max_retries=2),
                f"malformed JSON {i}",
                attempts_per_run=3,
                reason="the agent's answer is not JSON",
            )
            for i in range(2)
        ]

        def invalid(start: datetime) -> Load:
            return Load(
                {
                    task_id: at
                    for kind in INVALID
                    for task_id, at in chaos.seed_one_shots(
                        3, start=start, spread=PHASE, title=f"invalid-{kind}"
                    ).fires_at.items()
                }
            )

        load, figures = _two_phases(chaos, poisons, extra=invalid)
        invalid_ids = [
            t for (t,) in chaos.db.rows("SELECT id FROM ai_tasks WHERE title LIKE 'invalid-%'")
        ]
        stored = {
            title: (state, result, model, tokens)
            for title, state, result, model, tokens in chaos.db.rows(
                "SELECT t.title, r.state, r.result, r.agent_model, r.prompt_tokens "
                "FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
                "WHERE t.id = ANY(:ids)",
                ids=invalid_ids,
            )
        }
        outcome = chaos.outcome(
            load, None, notes=_notes(figures, "malformed JSON; replies with NUL etc. stored")
        )
        outcome.extra.update(figures)
        outcome.extra["invalid_replies"] = {
            title: {"state": s, "model_chars": len(m or ""), "prompt_tokens": t}
            for title, (s, _, m, t) in sorted(stored.items())
        }
        report.record(outcome)
        assert outcome.clean, outcome
        assert len(stored) == 3 * len(INVALID), stored
        for title, (state, result, model, tokens) in stored.items():
            assert state == "succeeded", (title, state)
            assert "\x00" not in result, title
            result.encode("utf-8")  # no lone surrogate left
            assert len(model) <= 200 and (tokens is None or tokens < 2**31), title
