"""``pa run`` on the embedded default, as a newcomer runs it: no service, demo task, Ctrl-C."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support.cli import embedded_env

pytestmark = pytest.mark.e2e


@contextmanager
def _start(home: Path, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-m", "personal_assistant.cli.main", "run", *args],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


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


def test_pa_run_shows_the_demo_run_and_its_notification(tmp_path: Path) -> None:
    started = time.monotonic()
    with _start(tmp_path, embedded_env(tmp_path)) as proc:
        output = _read_until(proc, "notification 1 [in_app, delivered]", timeout=30)
        assert time.monotonic() - started < 30
        assert "run 1 succeeded (Welcome to your assistant)" in output
        assert f"sqlite:///{tmp_path}/var/pa.db" in output
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert (tmp_path / "logs" / "core.log").read_text().count("event=run_succeeded") == 1


def test_second_start_keeps_the_data_and_adds_no_demo(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    for _ in range(2):
        with _start(tmp_path, env) as proc:
            _read_until(proc, "Running.", timeout=30)
            time.sleep(1)  # let the worker and beat come up before Ctrl-C
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        assert proc.returncode == 0
    listed = subprocess.run(
        [sys.executable, "-m", "personal_assistant.cli.main", "task", "list", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("Welcome to your assistant") == 1


def test_pa_run_serves_the_api_or_says_why_not(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        # The port is in use: pa run says so and runs the worker and the scheduler anyway.
        with _start(tmp_path, embedded_env(tmp_path), "--port", str(busy)) as proc:
            output = _read_until(proc, "notification 1 [in_app, delivered]", timeout=60)
            assert f"not served, 127.0.0.1:{busy} is in use" in output
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        assert proc.returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with _start(tmp_path, embedded_env(tmp_path), "--port", str(free)) as proc:
        output = _read_until(proc, "Running.", timeout=60)
        assert f"api: http://127.0.0.1:{free}" in output
        base = f"http://127.0.0.1:{free}"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"{base}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the API did not answer"
                time.sleep(0.2)
        assert answer.json() == {"ok": True}
        assert httpx.get(f"{base}/v1/tasks", timeout=5).status_code == 401
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert "Application shutdown complete" in (tmp_path / "logs" / "api.log").read_text()
