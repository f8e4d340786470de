"""Importing any module has no side effects: no connection, no thread, no file, no print."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import personal_assistant

PROBE = """
import importlib, os, sys, threading, socket
opened = []
real_connect = socket.socket.connect
def refuse(self, *a, **k):
    raise AssertionError(f"connection at import: {a}")
socket.socket.connect = refuse
for name in sys.argv[1:]:
    importlib.import_module(name)
assert threading.active_count() == 1, threading.enumerate()
assert os.listdir(".") == [], os.listdir(".")
"""


def _modules() -> list[str]:
    root = Path(personal_assistant.__file__).parent
    names = ["personal_assistant"]
    for info in pkgutil.walk_packages([str(root)], prefix="personal_assistant."):
        if ".migrations" in info.name:
            continue  # Alembic's env.py is run by Alembic, not imported
        names.append(info.name)
    return names


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    modules = _modules()
    assert "personal_assistant.workers.celery_app" in modules
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


#: What `pa` must not load before a command runs (issue 16: `pa --help` starts at once): the
#: database and HTTP stacks, the settings' pydantic machinery, the broker, cryptography.
HEAVY = (
    "sqlalchemy",
    "pydantic_settings",
    "httpx",
    "aiohttp",
    "redis",
    "celery",
    "kombu",
    "cryptography",
)


def loaded_by(module: str, packages: tuple[str, ...]) -> list[str]:
    """Which of ``packages`` a fresh interpreter has loaded once it has imported ``module``."""
    probe = (
        f"import sys, {module}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({packages!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return list(ast.literal_eval(done.stdout.strip()))


def test_the_cli_loads_no_heavy_package_before_a_command_runs() -> None:
    """``import personal_assistant.cli.main`` (what ``pa --help`` runs) leaves the heavy
    packages for the commands that use them: each command imports what it needs."""
    assert loaded_by("personal_assistant.cli.main", HEAVY) == []


#: What the task and status commands need not load: they call no model and no broker.
NOT_FOR_READS = ("httpx", "aiohttp", "redis", "celery", "kombu")


def test_the_assistant_facade_loads_no_model_or_broker_client() -> None:
    """``pa task list`` and ``pa status`` go through :mod:`personal_assistant.app.assistant`:
    the HTTP client of the model and the Redis and Celery clients come with the commands and
    processes that call them (they were 0.3 s of a 1.2 s ``pa task list``)."""
    assert loaded_by("personal_assistant.app.assistant", NOT_FOR_READS) == []
