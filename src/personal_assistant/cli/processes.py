"""The long-running processes: worker, beat, and ``pa run`` (both, supervised)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import typer

from personal_assistant import logsetup
from personal_assistant.config import Settings
from personal_assistant.database import migrate
from personal_assistant.database.types import utcnow
from personal_assistant.workers.routing import worker_queues


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
    settings = Settings.from_env()
    logsetup.configure(settings)
    argv = ["worker", "-Q", queues or worker_queues(), "-l", loglevel]
    if concurrency:
        argv += ["-c", str(concurrency)]
    _celery_app(settings).worker_main([*argv, *ctx.args])


def beat(ctx: typer.Context, loglevel: str = typer.Option("info", "--loglevel", "-l")) -> None:
    settings = Settings.from_env()
    logsetup.configure(settings)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _celery_app(settings).start(["beat", "-l", loglevel, *ctx.args])


def run(
    demo: bool = typer.Option(True, help="Create a demo task on first start."),
) -> None:
    """Migrate, start a worker and the scheduler, and show runs and notifications live."""
    settings = Settings.from_env()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    log_path = logsetup.configure(settings, stderr=False)
    migrate.upgrade(settings.database_url)
    for key, value in settings.describe().items():
        typer.echo(f"{key:>15}: {value}")
    if demo:
        message = asyncio.run(_ensure_demo(settings))
        if message:
            typer.echo(message)
    env = dict(os.environ, PA_HOME=str(settings.home))
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("worker", "beat"):
            children[name] = _spawn(name, settings.log_dir / f"{name}.log", env)
        typer.echo(
            f"{'logs':>15}: {log_path} (events), "
            + ", ".join(str(settings.log_dir / f"{n}.log") for n in children)
        )
        typer.echo("Running. Press Ctrl-C to stop.\n")
        asyncio.run(_watch(settings, children))
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


def _spawn(name: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "personal_assistant.cli.main", name],
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
    from personal_assistant.tools.ai_scheduler.ai_task_manager import AITaskManager

    async with AITaskManager(settings) as manager:
        if await manager.list_users():
            return None
        user = await manager.create_user("Demo user", timezone=os.environ.get("TZ") or "UTC")
        at = utcnow() + timedelta(seconds=5)
        task = await manager.create_task(
            user.id,
            "Welcome to your assistant",
            description="Say hello and explain what this assistant does in background.",
            schedule={"kind": "once", "at": at.isoformat()},
        )
        return (
            f"Created demo user {user.id} and task {task.id} "
            f"'{task.title}', due at {at:%H:%M:%S} UTC."
        )


async def _watch(settings: Settings, children: dict[str, subprocess.Popen[bytes]]) -> None:
    from sqlalchemy import select

    from personal_assistant.core.states import RunState
    from personal_assistant.database.engine import make_async_engine
    from personal_assistant.database.models import AITask, Notification, TaskRun

    engine = make_async_engine(settings.database_url, pooled=False)
    final = [RunState.SUCCEEDED, RunState.FAILED]
    # Ctrl-C ends the loop between two polls: a KeyboardInterrupt raised in the middle of a
    # database call could leave aiosqlite's connection thread open, and the process hanging.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with engine.connect() as conn:
            last_run = await conn.scalar(select(TaskRun.id).order_by(TaskRun.id.desc())) or 0
            last_note = (
                await conn.scalar(select(Notification.id).order_by(Notification.id.desc())) or 0
            )
        seen_runs: set[int] = set()
        while not stop.is_set():
            for name, proc in children.items():
                if proc.poll() is not None:
                    raise typer.Exit(_died(name, proc, settings))
            async with engine.connect() as conn:
                runs = (
                    await conn.execute(
                        select(
                            TaskRun.id,
                            TaskRun.state,
                            TaskRun.result,
                            TaskRun.error,
                            TaskRun.finished_at,
                            TaskRun.scheduled_for,
                            AITask.title,
                        )
                        .join(AITask, AITask.id == TaskRun.task_id)
                        .where(TaskRun.id > last_run, TaskRun.state.in_(final))
                        .order_by(TaskRun.id)
                    )
                ).all()
                notes = (
                    await conn.execute(
                        select(
                            Notification.id,
                            Notification.channel,
                            Notification.status,
                            Notification.title,
                            Notification.body,
                        )
                        .where(Notification.id > last_note)
                        .order_by(Notification.id)
                    )
                ).all()
            for r in runs:
                if r.id in seen_runs:
                    continue
                seen_runs.add(r.id)
                late = (r.finished_at - r.scheduled_for).total_seconds()
                typer.echo(
                    f"run {r.id} {r.state} ({r.title}), finished {late:.1f} s after "
                    f"its time: {(r.result or r.error or '').splitlines()[0]}"
                )
            for n in notes:
                last_note = n.id
                typer.echo(
                    f"notification {n.id} [{n.channel}, {n.status}] {n.title}: "
                    f"{n.body.splitlines()[0]}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await engine.dispose()


def _died(name: str, proc: subprocess.Popen[bytes], settings: Settings) -> int:
    typer.echo(
        f"The {name} stopped (exit code {proc.returncode}); "
        f"see {settings.log_dir / (name + '.log')}",
        err=True,
    )
    return 1
