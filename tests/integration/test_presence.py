"""Workers and the scheduler say what they are in ``worker_heartbeats``, and leave cleanly.

Before, a worker wrote its row only once it had claimed a run, and beat wrote none: ``pa status``
answered "healthy" with no worker and no scheduler running, and could not tell a queue without a
consumer. Now a worker's main process beats from the moment its consumer is ready, with its
queues, version and delivery settings; the scheduler beats from its tick; both delete their row
on a clean stop, so a silent row means a process that died or was stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from personal_assistant import __version__
from support.processes import ProcessGroup, wait_until
from support.stack import Db

pytestmark = pytest.mark.integration


def _rows(db: Db) -> dict[str, tuple[str, str | None, str | None, dict[str, object] | None]]:
    return {
        row.worker_id: (row.role, row.queues, row.version, row.config)
        for row in db.rows("SELECT worker_id, role, queues, version, config FROM worker_heartbeats")
    }


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "personal_assistant.cli.main", "status", "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_worker_and_a_scheduler_beat_with_what_they_are_and_leave_on_a_clean_stop(
    stack_env: dict[str, str], db: Db, tmp_path: Path
) -> None:
    env = {**stack_env, "HEARTBEAT_INTERVAL": "1"}
    procs = ProcessGroup(tmp_path / "logs")
    try:
        worker = procs.worker(env, extra=["-Q", "sync_tasks,email_tasks", "-c", "2"])
        wait_until(
            lambda: any(role == "worker" for role, *_ in _rows(db).values()),
            60,
            message="the idle worker's row",
        )
        (worker_id, (role, queues, version, config)), *others = _rows(db).items()
        assert not others
        assert worker_id.endswith(f":{worker.pid}")
        assert (role, queues, version) == ("worker", "email_tasks,sync_tasks", __version__)
        assert config is not None
        assert config["task_acks_late"] is True and config["worker_prefetch_multiplier"] == 1
        assert config["worker_pool"] == "threads"

        # No scheduler, and three queues nobody consumes: pa status says each.
        status = _status(env)
        assert status.returncode == 1, status.stdout + status.stderr
        problems = "\n".join(json.loads(status.stdout)["problems"])
        for queue in ("ai_tasks", "file_tasks", "maintenance_tasks"):
            assert f"no live worker consumes {queue}" in problems
        assert "sync_tasks" not in problems and "no scheduler" in problems

        beat = procs.beat(env)
        wait_until(
            lambda: any(role == "scheduler" for role, *_ in _rows(db).values()),
            60,
            message="the scheduler's row",
        )
        assert f":{beat.pid}" in next(w for w, r in _rows(db).items() if r[0] == "scheduler")

        procs.kill("worker", signal.SIGTERM)
        procs.kill("beat", signal.SIGTERM)
        assert _rows(db) == {}, "a clean stop leaves no row behind"
    finally:
        procs.stop_all()
