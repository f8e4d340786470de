"""The commands of the published contract (shared/CONTRACT.md), on the real Redis and
PostgreSQL, run as a person runs them: in a shell, from the repository root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.processes import wait_until
from support.stack import Db

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


def sh(command: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 60) -> str:
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture
def env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **stack_env, "PATH": f"{BIN}:{os.environ['PATH']}"}


def test_service_and_import_commands(env: dict[str, str]) -> None:
    if shutil.which("redis-cli"):
        assert sh("redis-cli ping", env).strip() == "PONG"
    if shutil.which("psql"):
        assert "1" in sh('psql -h 127.0.0.1 -U postgres -c "SELECT 1;"', env)
    assert (
        sh(
            'python -c "from personal_assistant.workers.celery_app import app; '
            "print('Celery app loaded')\"",
            env,
        ).strip()
        == "Celery app loaded"
    )
    assert sh(
        'python -c "from personal_assistant.tools.ai_scheduler.ai_task_manager import '
        "AITaskManager; print('AI Task Manager loaded')\"",
        env,
    ).strip() == ("AI Task Manager loaded")


def test_manager_example_runs_as_written(env: dict[str, str], database_url: str) -> None:
    script = """
import asyncio
from personal_assistant.tools.ai_scheduler.ai_task_manager import AITaskManager
async def test():
    manager = AITaskManager()
    user = await manager.create_user("Ada", timezone="Europe/Paris")
    task = await manager.create_task(user.id, "Tea", schedule={"kind": "daily", "times": ["16:00"]})
    await manager.update_task(task.id, user.id, title="Green tea")
    print([t.title for t in await manager.list_tasks(user.id)])
asyncio.run(test())
"""
    assert sh(f"python -c '{script}'", env).strip() == "['Green tea']"


def test_start_workers_script_runs_a_task_and_logs_to_core_log(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    # A copy of the repository's script in a scratch root, so logs/ lands there.
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "start_workers.sh", tmp_path / "tests" / "start_workers.sh")
    out = sh("./tests/start_workers.sh", env, cwd=tmp_path)
    try:
        assert "worker pid" in out and "beat" in out
        assert "worker: running" in sh("./tests/start_workers.sh status", env, cwd=tmp_path)
        sh(
            "python -m personal_assistant.cli.main user add Ada && "
            "python -m personal_assistant.cli.main task add 'Contract check' --in 1s",
            env,
            cwd=tmp_path,
        )
        db = Db(database_url)
        wait_until(
            lambda: db.scalar("SELECT count(*) FROM task_runs WHERE state = 'succeeded'") == 1,
            timeout=30,
            message="the task to run",
        )
        db.close()
        core = tmp_path / "logs" / "core.log"
        wait_until(
            lambda: core.exists() and "event=run_succeeded" in core.read_text(),
            timeout=10,
            message="the event in logs/core.log",
        )
        assert "event=tasks_claimed" in core.read_text()
    finally:
        stopped = sh("./tests/start_workers.sh stop", env, cwd=tmp_path)
    assert "stopped worker" in stopped and "stopped beat" in stopped
    assert "worker: stopped" in sh("./tests/start_workers.sh status", env, cwd=tmp_path)
