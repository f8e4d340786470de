"""``pa task list`` and ``pa status`` answer without SQLAlchemy, Celery or an event loop's
database driver: they read through one plain driver connection (issue 16: a CLI that answers at
once). Run as ``pa`` runs, in a fresh interpreter, on a migrated SQLite database."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from personal_assistant.config import Settings
from support.factories import user_with_tasks

pytestmark = pytest.mark.e2e

#: What the quick commands must not load: each costs tens of milliseconds to import.
NOT_LOADED = ("sqlalchemy", "alembic", "aiosqlite", "celery", "kombu", "redis", "httpx", "aiohttp")

PROBE = """
import sys
from personal_assistant.cli.main import main
sys.argv = ["pa", *sys.argv[1:]]
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
print(repr((code, sorted({m.split(".")[0] for m in sys.modules}))), file=sys.stderr)
"""


def _run(env: dict[str, str], *args: str) -> tuple[int, set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    code, loaded = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    return code, set(loaded), done.stdout


@pytest.fixture
def env(sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    user_with_tasks(
        Settings(DATABASE_URL=sqlite_url),  # type: ignore[call-arg]
        2,
        created=datetime(2026, 12, 1, tzinfo=UTC),
    )
    keep = {k: v for k, v in os.environ.items() if k != "PA_USER" and not k.endswith("_URL")}
    return {**keep, "DATABASE_URL": sqlite_url, "PA_HOME": str(tmp_path), "COLUMNS": "200"}


def test_task_list_reads_without_sqlalchemy(env: dict[str, str]) -> None:
    code, loaded, out = _run(env, "task", "list")
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:]] == ["t0", "t1"]
    assert loaded & set(NOT_LOADED) == set()


def test_status_reads_without_sqlalchemy_or_celery(env: dict[str, str]) -> None:
    code, loaded, out = _run(env, "status")
    assert code == 1  # no worker and no scheduler are running
    assert "active tasks: 2" in out
    assert "no worker has reported" in out
    assert loaded & set(NOT_LOADED) == set()
