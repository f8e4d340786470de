"""The ``pa`` command as a subprocess, on an SQLite database of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).with_name("pa")
PA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "personal_assistant.cli.main"]


class Pa:
    """Runs ``pa`` with the environment's URLs and ``PA_USER`` removed (nothing shared)."""

    def __init__(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PA_USER" and not k.endswith("_URL")}
        env.update(DATABASE_URL=f"sqlite:///{tmp_path}/pa.db", PA_HOME=str(tmp_path))
        # The test servers (feeds, webhooks, SMTP) listen on loopback, refused by default.
        env.update(OUTBOUND_ALLOW="127.0.0.0/8")
        self.env = env

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PA, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, code: int, *args: str) -> str:
        """The error text of a command that must exit with ``code`` and print nothing."""
        done = self(*args)
        assert done.returncode == code, (done.stdout, done.stderr)
        assert done.stdout == ""
        return done.stderr


def ready(tmp_path: Path, zone: str = "Europe/Paris") -> Pa:
    """``pa`` on a migrated database with one user, Ada, in ``zone``."""
    cli = Pa(tmp_path)
    cli.ok("db", "upgrade")
    cli.ok("user", "add", "Ada", "--tz", zone)
    return cli


def embedded_env(home: Path) -> dict[str, str]:
    """The environment of a newcomer's ``pa run`` in ``home``: no service URL, so the embedded
    default (SQLite files under ``home``)."""
    skipped = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    env = {k: v for k, v in os.environ.items() if k not in skipped}
    env["PA_HOME"] = str(home)
    return env
