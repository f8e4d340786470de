"""The long-running processes: worker, beat, and ``pa run`` (both, supervised)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from personal_assistant import logsetup
from personal_assistant.cli import session
from personal_assistant.cli.db import upgrade_or_explain
from personal_assistant.cli.serve import DEFAULT_HOST, DEFAULT_PORT
from personal_assistant.private_files import private_dir, private_file
from personal_assistant.redaction import mask_url
from personal_assistant.workers.routing import worker_queues

if TYPE_CHECKING:
    from personal_assistant.app.system import System
    from personal_assistant.config import Settings

#: How often ``pa run`` checks that the broker answers, and how long one check may take.
BROKER_CHECK_SECONDS = 5.0
BROKER_CHECK_TIMEOUT = 3.0


def _celery_app(settings: Settings):  # type: ignore[no-untyped-def]  # Celery is untyped
    from personal_assistant.workers.celery_app import app

    app.use_settings(settings)
    return app


def worker(
    ctx: typer.Context,
    queues: str = typer.Option(
        None, "--queues", "-Q", help="Comma-separated queues (default: all five declared queues)."
    ),
    concurrency: int = typer.Option(None, "--concurrency", "-c", help="Threads per worker."),
    loglevel: str = typer.Option("info", "--loglevel", "-l"),
) -> None:
    settings = session.settings()
    logsetup.configure(settings)
    argv = ["worker", "-Q", queues or worker_queues(), "-l", loglevel]
    if concurrency:
        argv += ["-c", str(concurrency)]
    _celery_app(settings).worker_main([*argv, *ctx.args])


def beat(ctx: typer.Context, loglevel: str = typer.Option("info", "--loglevel", "-l")) -> None:
    settings = session.settings()
    logsetup.configure(settings)
    private_dir(settings.var_dir)
    _celery_app(settings).start(["beat", "-l", loglevel, *ctx.args])


def run(
    demo: bool = typer.Option(True, help="Create a demo task on first start."),
    api: bool = typer.Option(True, help="Serve the HTTP API and the dashboard too."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address the API listens on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Its port."),
) -> None:
    """Migrate, start a worker, the scheduler and the HTTP API (127.0.0.1:8000), and show runs
    and notifications live."""
    settings = session.settings()
    private_dir(settings.var_dir)
    log_path = logsetup.configure(settings, stderr=False)
    upgrade_or_explain(settings.database_url)
    for key, value in settings.describe().items():
        typer.echo(f"{key:>15}: {value}")
    if demo:
        message = asyncio.run(_ensure_demo(settings))
        if message:
            typer.echo(message)
    env = dict(os.environ, PA_HOME=str(settings.home))
    children: dict[str, subprocess.Popen[bytes]] = {}
    marks = asyncio.run(_marks(settings))  # before the scheduler can write a run
    try:
        for name in ("worker", "beat"):
            children[name] = _spawn(name, settings.log_dir / f"{name}.log", env)
        if api:
            _serve_api(children, settings, env, host, port)
        typer.echo(
            f"{'logs':>15}: {log_path} (events), "
            + ", ".join(str(settings.log_dir / f"{n}.log") for n in children)
        )
        typer.echo("Running. Press Ctrl-C to stop.\n")
        asyncio.run(_watch(settings, children, marks))
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("\nStopping worker and scheduler...")
        _stop(children)
    typer.echo("Stopped.")


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGTERM if ``pa run`` dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _serve_api(
    children: dict[str, subprocess.Popen[bytes]],
    settings: Settings,
    env: dict[str, str],
    host: str,
    port: int,
) -> None:
    """Start ``pa serve`` on ``host:port`` unless the address is taken (then say so: the
    worker and the scheduler run without it)."""
    where = f"http://{host}:{port}"
    if not _can_listen(host, port):
        typer.echo(
            f"{'api':>15}: not served, {host}:{port} is in use (pa run --port N to choose)",
            err=True,
        )
        return
    args = ["serve", "--host", host, "--port", str(port)]
    children["api"] = _spawn("api", settings.log_dir / "api.log", env, args)
    typer.echo(f"{'api':>15}: {where} (dashboard), {where}/docs (reference)")
    typer.echo(f"{'sign in with':>15}: a key from `pa user key create NAME`")


def _can_listen(host: str, port: int) -> bool:
    """Whether ``host:port`` is free to listen on now (uvicorn reuses the address too)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def _spawn(
    name: str, log: Path, env: dict[str, str], args: list[str] | None = None
) -> subprocess.Popen[bytes]:
    with private_file(log).open("ab") as out:  # 0600, its directory 0700
        return subprocess.Popen(
            [sys.executable, "-m", "personal_assistant.cli.main", *(args or [name])],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
            preexec_fn=_die_with_parent,  # pa run starts no thread before this
        )


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _ensure_demo(settings: Settings) -> str | None:
    from personal_assistant.app.assistant import Assistant

    """The line saying which demo task a first start made; None when users exist."""
    async with Assistant(settings) as app:
        demo = await app.system.ensure_demo(timezone=os.environ.get("TZ") or "UTC")
    if demo is None:
        return None
    return (
        f"Created demo user {demo.user_id} and task {demo.task_id} "
        f"'{demo.title}', due at {demo.at:%H:%M:%S} UTC."
    )


class _Outages:
    """A line on the screen when a service stops answering, and one when it answers again.

    With the broker or the database down, the worker and the scheduler wait and retry in the
    background while due tasks do not run; ``pa run`` says so once, not once per check.
    """

    def __init__(self) -> None:
        self._down: set[str] = set()

    def failed(self, service: str, line: str) -> None:
        if service not in self._down:
            self._down.add(service)
            typer.echo(line, err=True)

    def answered(self, service: str, line: str) -> None:
        if service in self._down:
            self._down.discard(service)
            typer.echo(line, err=True)


def _broker_error(app: Any) -> str | None:
    """None if the broker accepts a connection, else why not, in one line."""
    from kombu.exceptions import OperationalError

    with app.connection_for_write() as conn:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_CHECK_TIMEOUT)
        except (OperationalError, OSError, *conn.connection_errors) as exc:
            return " ".join(str(exc).split()) or type(exc).__name__
    return None


async def _watch_broker(settings: Settings, outages: _Outages, stop: asyncio.Event) -> None:
    """Check every few seconds that the broker answers; report outages and recoveries."""
    app = _celery_app(settings)
    where = mask_url(settings.broker_url)
    while not stop.is_set():
        error = await asyncio.to_thread(_broker_error, app)
        if error is None:
            outages.answered("broker", f"The broker at {where} answers again.")
        else:
            outages.failed(
                "broker",
                f"The broker at {where} is unreachable ({error}): "
                "no run is sent or done until it answers.",
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), BROKER_CHECK_SECONDS)


async def _marks(settings: Settings) -> tuple[int, int] | None:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.failures import UnusableDatabase

    """The last run and notification ids, or None when the database does not answer (the
    screen then marks at its first poll)."""
    async with Assistant(settings) as app:
        try:
            return await app.system.last_ids()
        except UnusableDatabase:
            return None


async def _watch(
    settings: Settings,
    children: dict[str, subprocess.Popen[bytes]],
    marks: tuple[int, int] | None = None,
) -> None:
    from personal_assistant.app.assistant import Assistant

    async with Assistant(settings) as app:  # one engine for the screen's whole life
        await _poll(app.system, settings, children, _Feed(marks))


async def _poll(
    system: System,
    settings: Settings,
    children: dict[str, subprocess.Popen[bytes]],
    feed: _Feed,
) -> None:
    """Show what is new every half second until Ctrl-C; say when a service stops answering."""
    from personal_assistant.database.failures import UnusableDatabase

    outages = _Outages()
    where = mask_url(settings.database_url)
    # Ctrl-C ends the loop between two polls: a KeyboardInterrupt raised in the middle of a
    # database call could leave aiosqlite's connection thread open, and the process hanging.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    broker: asyncio.Task[None] | None = None
    if not settings.broker_url.startswith("sqla+"):  # the embedded broker is a local file
        broker = asyncio.create_task(_watch_broker(settings, outages, stop))
    try:
        while not stop.is_set():
            for name, proc in list(children.items()):
                if proc.poll() is None:
                    continue
                if name != "api":
                    raise typer.Exit(_died(name, proc, settings))
                del children[name]  # the worker and the scheduler go on without it
                _died(name, proc, settings)
            try:
                await feed.show_new(system)
            except UnusableDatabase as exc:
                why = " ".join(exc.reason.split())
                outages.failed(
                    "database",
                    f"The database at {where} is unreachable ({why}): "
                    "no run is started or recorded until it answers.",
                )
            else:
                outages.answered("database", f"The database at {where} answers again.")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        stop.set()
        if broker is not None:
            await broker
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class _Feed:
    """The runs that finished and the notifications written since ``pa run`` started.

    ``marks`` (the last run and notification ids) are read before the worker and the scheduler
    start. Read at the first poll instead, they would hide a run the scheduler wrote before
    that poll, even though it finished after it (``tests/integration/test_run_screen.py``)."""

    def __init__(self, marks: tuple[int, int] | None = None) -> None:
        self._marks = marks  # (last run id, last notification id); None: at the first poll
        self._seen_runs: set[int] = set()

    async def show_new(self, system: System) -> None:
        if self._marks is None:
            self._marks = await system.last_ids()
        runs, notes = await system.new_since(*self._marks)
        for r in runs:
            if r.id in self._seen_runs:
                continue
            self._seen_runs.add(r.id)
            late = (r.finished_at - r.scheduled_for).total_seconds()
            typer.echo(
                f"run {r.id} {r.state} ({r.title}), finished {late:.1f} s after "
                f"its time: {(r.result or r.error or '').splitlines()[0]}"
            )
        for n in notes:
            self._marks = (self._marks[0], n.id)
            typer.echo(
                f"notification {n.id} [{n.channel}, {n.status}] {n.title}: {n.body.splitlines()[0]}"
            )


#: What ``pa run`` calls its children when one stops.
_SERVICE = {"beat": "scheduler", "api": "HTTP API"}


def _died(name: str, proc: subprocess.Popen[bytes], settings: Settings) -> int:
    typer.echo(
        f"The {_SERVICE.get(name, name)} stopped (exit code {proc.returncode}); "
        f"see {settings.log_dir / (name + '.log')}",
        err=True,
    )
    return 1
