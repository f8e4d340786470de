"""Real worker and beat processes for tests, and waiting by condition."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CELERY_APP = "personal_assistant.workers.celery_app"


def wait_until(
    predicate: Callable[[], T], timeout: float, *, interval: float = 0.1, message: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


class ProcessGroup:
    """Starts processes with their output in ``log_dir``; stops them all at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env}
        with (self.log_dir / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def worker(
        self,
        env: dict[str, str],
        name: str = "worker",
        extra: Sequence[str] = (),
        runner: Sequence[str] = ("-m", "celery"),
    ) -> subprocess.Popen[bytes]:
        """A Celery worker; ``runner``: what runs Celery (a wrapper module that takes its args)."""
        return self.start(
            name,
            [
                sys.executable,
                *runner,
                "-A",
                CELERY_APP,
                "worker",
                "-l",
                "info",
                "--without-mingle",
                "--without-gossip",
                "-n",
                f"{name}@%h",
                *extra,
            ],
            env,
        )

    def beat(
        self, env: dict[str, str], name: str = "beat", runner: Sequence[str] = ("-m", "celery")
    ) -> subprocess.Popen[bytes]:
        schedule = self.log_dir / f"{name}-schedule"
        return self.start(
            name,
            [
                sys.executable,
                *runner,
                "-A",
                CELERY_APP,
                "beat",
                "-l",
                "info",
                "-s",
                str(schedule),
            ],
            env,
        )

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
