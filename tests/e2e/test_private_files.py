"""The embedded default's files are readable by their owner only, whatever the umask.

``pa run`` is started as a newcomer starts it, but under ``umask 000`` (the most permissive):
the SQLite database (and its WAL and shared-memory files), Celery's broker and result files,
and the log files come out 0600, their directories 0700.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    }
    env["PA_HOME"] = str(home)
    return env


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """Read the process's output (in a thread: pipes buffer) until ``needle`` shows up."""
    assert proc.stdout is not None
    stream = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{needle!r} not seen in time; output so far:\n{seen}")
        try:
            seen += lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError(
                    f"exited {proc.returncode} before {needle!r}:\n{seen}"
                ) from None
    return seen


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_databases_and_logs_are_created_owner_only_under_any_umask(tmp_path: Path) -> None:
    command = shlex.join([sys.executable, "-m", "personal_assistant.cli.main", "run"])
    with subprocess.Popen(
        ["sh", "-c", f"umask 000 && exec {command}"],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            _read_until(proc, "notification 1 [in_app, delivered]", timeout=60)
            running = _modes(tmp_path)  # -wal and -shm files too, while they exist
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0

    stopped = _modes(tmp_path)
    expected = {"var/pa.db", "var/broker.db", "logs/core.log", "logs/worker.log", "logs/beat.log"}
    assert expected <= set(stopped)
    for modes in (running, stopped):
        assert modes == {
            name: "0o700" if name in ("var", "logs") or name.endswith("/") else "0o600"
            for name in modes
        }


def _modes(home: Path) -> dict[str, str]:
    """The mode of ``var``, ``logs`` and everything in them (directories end with ``/``)."""
    modes = {}
    for top in (home / "var", home / "logs"):
        modes[top.name] = _mode(top)
        for path in top.rglob("*"):
            try:
                info = path.stat()
            except FileNotFoundError:  # a -wal or -journal file removed as we looked
                continue
            name = str(path.relative_to(home)) + ("/" if stat.S_ISDIR(info.st_mode) else "")
            modes[name] = oct(stat.S_IMODE(info.st_mode))
    return modes
