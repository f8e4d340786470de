"""``/metrics`` of a real worker and a real scheduler while runs flow, checked against the
database: every counter a run moves equals what the tables say happened.

The worker runs each of Celery's pools we support: ``threads`` (one process) and ``prefork``
(the children count, the main process serves their sum: prometheus_client's multiprocess
mode). Runs: one-shot tasks that succeed, and one whose agent fails the first attempt of
each run (a retry, then a success), so that two outcomes and the agent's error counter move.
When promtool is installed (CI installs Debian's ``prometheus``), each scrape must pass
``promtool check metrics``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.workers.routing import QUEUES
from support.hook_server import free_port
from support.processes import ProcessGroup, wait_until
from support.stack import Db, settings_for

pytestmark = pytest.mark.integration

TASKS = 12
#: Samples by metric name, each a {labels: value} map.
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        value
        for key, value in samples.get(name, {}).items()
        if all((k, v) in key for k, v in labels.items())
    )


def two_ports() -> tuple[int, int]:
    """Two free ports, distinct (the kernel may hand the same one out twice)."""
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def served(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def promtool_accepts(text: str) -> None:
    """``promtool check metrics`` on a scrape; without promtool, checked only under CI (fails)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool (Debian's prometheus package) is missing, and CI is set")
        return
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _seed(env: dict[str, str]) -> int:
    """``TASKS`` one-shot tasks firing within seconds, the last failing its first attempt."""
    soon = datetime.now(UTC) + timedelta(seconds=2)

    async def go() -> int:
        async with AITaskManager(settings_for(env)) as manager:
            user = await manager.create_user("Metrics", timezone="Europe/Paris")
            for n in range(TASKS):
                await manager.create_task(
                    user.id,
                    f"metric {n}",
                    schedule={"kind": "once", "at": (soon + timedelta(seconds=n / 4)).isoformat()},
                    ai_context=(
                        {"simulate_failure": "drill", "simulate_failure_attempts": 1}
                        if n == TASKS - 1
                        else None
                    ),
                )
            return user.id

    return asyncio.run(go())


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_counters_match_the_database(
    stack_env: dict[str, str], db: Db, tmp_path: Path, pool: str
) -> None:
    worker_port, beat_port = two_ports()
    env = {**stack_env, "MAX_IN_FLIGHT": "40"}
    procs = ProcessGroup(tmp_path / "logs")
    try:
        procs.worker({**env, "METRICS_PORT": str(worker_port)}, extra=["-P", pool, "-c", "2"])
        procs.beat({**env, "METRICS_PORT": str(beat_port)})
        wait_until(lambda: served(worker_port) and served(beat_port), 60, message="/metrics")
        _, before = scrape(worker_port)
        assert total(before, "pa_runs_finished_total") == 0
        assert total(before, "pa_runs_in_flight_limit") == 40

        user_id = _seed(env)
        # While runs flow: no counter runs ahead of the database.
        _, during = scrape(worker_port)
        stored = db.scalar(
            "SELECT count(*) FROM task_runs WHERE state IN ('succeeded', 'retrying', 'failed')"
        )
        assert total(during, "pa_runs_finished_total", outcome="succeeded") <= stored

        wait_until(
            lambda: db.scalar("SELECT count(*) FROM task_runs WHERE state = 'succeeded'") == TASKS,
            60,
            message="every run to succeed",
        )
        # The worker counts after its transaction commits: give the last scrape a moment.
        wait_until(
            lambda: (
                total(scrape(worker_port)[1], "pa_runs_finished_total", outcome="succeeded")
                == TASKS
            ),
            10,
            message="the counter to catch up",
        )
        text, after = scrape(worker_port)
        beat_text, beat = scrape(beat_port)
    finally:
        procs.stop_all()

    succeeded = db.scalar("SELECT count(*) FROM task_runs WHERE state = 'succeeded'")
    attempts = db.scalar("SELECT sum(attempt) FROM task_runs")
    runs = db.scalar("SELECT count(*) FROM task_runs")
    delivered = db.scalar(
        "SELECT count(*) FROM notifications WHERE user_id = :u AND status = 'delivered'",
        u=user_id,
    )
    assert (succeeded, runs, attempts) == (TASKS, TASKS, TASKS + 1)

    assert total(after, "pa_runs_finished_total", outcome="succeeded") == succeeded
    assert total(after, "pa_runs_finished_total", outcome="retrying") == 1
    assert total(after, "pa_runs_finished_total") == attempts
    assert total(after, "pa_runs_finished_total", task_type="reminder") == attempts
    assert total(after, "pa_run_duration_seconds_count") == attempts
    assert total(after, "pa_agent_call_seconds_count", agent="offline") == attempts
    assert total(after, "pa_agent_errors_total", agent="offline", error="transient") == 1
    assert total(after, "pa_run_lateness_seconds_count") == runs  # first attempts only
    assert total(after, "pa_runs_in_flight") == 0
    assert total(after, "pa_notifications_total", result="delivered") == delivered
    created = total(after, "pa_scheduler_runs_created_total") + total(
        beat, "pa_scheduler_runs_created_total"
    )
    assert created == runs
    assert total(beat, "pa_scheduler_tick_seconds_count") > 0
    # No user id, title or free text in any label.
    assert "Metrics" not in text and "metric 0" not in text
    promtool_accepts(text)
    promtool_accepts(beat_text)


def test_the_exporter_publishes_the_deployment_once(
    stack_env: dict[str, str], db: Db, tmp_path: Path
) -> None:
    """``pa metrics serve``: consumers per queue and live processes from the heartbeats, the
    broker's queue depths, overdue tasks and waiting runs from the database."""
    port = free_port()
    env = {**stack_env, "HEARTBEAT_INTERVAL": "1"}
    procs = ProcessGroup(tmp_path / "logs")
    try:
        procs.worker(env, extra=["-Q", "sync_tasks", "-c", "1"])
        procs.start(
            "exporter",
            [sys.executable, "-m", "personal_assistant.cli.main", "metrics", "serve", "--port",
             str(port)],
            env,
        )  # fmt: skip
        wait_until(lambda: served(port), 60, message="the exporter's /metrics")

        def consumers() -> float:
            return total(scrape(port)[1], "pa_queue_consumers", queue="sync_tasks")

        wait_until(lambda: consumers() == 1, 60, message="the worker's heartbeat")
        # A task due a minute ago and nobody to run it: no scheduler, so it is overdue.
        overdue_at = datetime.now(UTC) - timedelta(minutes=1)

        async def overdue_task() -> None:
            created = overdue_at - timedelta(seconds=10)
            async with AITaskManager(settings_for(env), clock=lambda: created) as manager:
                user = await manager.create_user("X", timezone="UTC")
                await manager.create_task(
                    user.id, "late", schedule={"kind": "once", "at": overdue_at.isoformat()}
                )

        asyncio.run(overdue_task())
        text, got = scrape(port)
    finally:
        procs.stop_all()

    assert total(got, "pa_broker_up") == 1
    assert total(got, "pa_queue_consumers", queue="sync_tasks") == 1
    assert total(got, "pa_queue_consumers", queue="ai_tasks") == 0
    assert total(got, "pa_processes_live", role="worker") == 1
    assert total(got, "pa_processes_live", role="scheduler") == 0
    assert "pa_scheduler_heartbeat_age_seconds" not in got  # never seen: left out, not 0
    assert set(got["pa_queue_depth"]) == {(("queue", q),) for q in QUEUES}
    assert total(got, "pa_tasks_overdue") == 1
    assert total(got, "pa_channels_broken") == 0
    assert "pa_runs_finished_total" not in text  # the processes' counters are theirs
    promtool_accepts(text)
