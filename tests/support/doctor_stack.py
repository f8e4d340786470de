"""Real stacks for ``pa doctor`` and ``pa status`` tests, healthy or with faults.

A :class:`Stack` is a deployment as an operator runs it: a PostgreSQL database of its own (a
clone of the migrated template), a Redis key prefix of its own on the machine's Redis, and real
worker and beat processes, each started by name and restartable (:meth:`Stack.ensure`). The
processes beat every second (``HEARTBEAT_INTERVAL=1``): a stopped one is stale after
``STALE_AFTER_BEATS`` seconds. ``pa`` itself runs as a subprocess, ``python -m
personal_assistant.cli.main``, with the stack's environment and nothing of the caller's URLs.

The faults that need more than a missing process are built here too: a worker whose Celery app
runs without ``task_acks_late`` (:data:`NO_ACKS_LATE`), a throw-away ``redis-server`` with an
eviction policy (``chaos.servers.RedisServer``, never the machine's Redis), a database left one
migration behind (:func:`database_at` of :func:`previous_revision`), and URLs on which nothing
listens (:func:`dead_url`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from personal_assistant.workers.routing import QUEUES
from support.hook_server import free_port
from support.keys import CHANNEL_KEY
from support.processes import ProcessGroup, wait_until
from support.services import (
    PG_ADMIN_URL,
    REDIS_URL,
    create_database_from_template,
    database_url,
    delete_redis_prefix,
    drop_database,
)
from support.stack import Db

PA = [sys.executable, "-m", "personal_assistant.cli.main"]
#: Seconds between heartbeats of the stacks' processes (``HEARTBEAT_INTERVAL``).
HEARTBEAT_S = 1
#: How long a process may take to start and write its first row (a busy 2-core machine).
START_TIMEOUT_S = 60.0

#: A Celery worker whose app runs without late acks: the project's app, configured from the
#: environment like any worker, with one setting overridden before the worker starts. Its
#: arguments are the worker's (``-Q``, ``-n``...).
NO_ACKS_LATE = """\
import sys
from personal_assistant.config import Settings
from personal_assistant.workers.celery_app import app
app.use_settings(Settings.from_env())
app.conf.update(task_acks_late=False)
app.worker_main(["worker", *sys.argv[1:]])
"""


def dead_url(scheme: str) -> str:
    """A URL of ``scheme`` on a loopback port where nothing listens (a service that is down)."""
    port = free_port()
    if scheme == "redis":
        return f"redis://127.0.0.1:{port}/0"
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def environment(database: str, prefix: str, home: Path) -> dict[str, str]:
    """A stack's environment on the machine's Redis, with timings shortened for tests."""
    return {
        "DATABASE_URL": database,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "PA_HOME": str(home),
        "CHANNEL_KEYS": CHANNEL_KEY,
        "HEARTBEAT_INTERVAL": str(HEARTBEAT_S),
        "SCHEDULER_TICK_SECONDS": "0.2",
        "DISPATCH_LEASE": "3",
        "REAPER_INTERVAL": "1",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "0.5",
    }


def _clean_env(env: dict[str, str]) -> dict[str, str]:
    """The caller's environment without its URLs, key prefix or user, then ``env``."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_URL") and k not in ("PA_USER", "REDIS_KEY_PREFIX")
    }
    return {**kept, **env}


def pa(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pa *args`` as a user runs it, with ``env``; never raises for its exit code."""
    return subprocess.run(
        [*PA, *args],
        env=_clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@dataclass(frozen=True)
class Doctor:
    """One ``pa doctor --json`` run: its exit code and its report."""

    code: int
    report: dict[str, Any]
    stderr: str

    def check(self, check_id: str) -> dict[str, Any]:
        for check in self.report["checks"]:
            if check["id"] == check_id:
                return dict(check)
        raise AssertionError(f"no check {check_id} in {self.verdicts()}")

    def verdicts(self) -> dict[str, str]:
        return {c["id"]: c["verdict"] for c in self.report["checks"]}

    def not_passed(self) -> dict[str, str]:
        """``id: verdict: evidence`` of every check that did not pass (for messages)."""
        return {
            c["id"]: f"{c['verdict']}: {c['evidence']}"
            for c in self.report["checks"]
            if c["verdict"] != "pass"
        }


def doctor(env: dict[str, str], *args: str) -> Doctor:
    """``pa doctor --json *args``; fails the test when it prints no JSON report."""
    done = pa(env, "doctor", "--json", *args)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"pa doctor exited {done.returncode} without a JSON report\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
        ) from None
    assert report["exit_code"] == done.returncode, (report["exit_code"], done.returncode)
    return Doctor(done.returncode, report, done.stderr)


class Stack:
    """A database, a Redis key prefix and named processes on them; :meth:`close` stops them."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.processes = ProcessGroup(log_dir)
        self.db = Db(env["DATABASE_URL"])
        self._starters: dict[str, Callable[[], subprocess.Popen[bytes]]] = {}
        self._stopped: set[str] = set()  # SIGSTOPped, to be continued before they are stopped

    # -- processes ------------------------------------------------------------------------

    def worker(self, name: str, queues: Sequence[str] = QUEUES) -> None:
        """A worker as the contract starts one: ``celery -A <app> worker -Q <queues>``."""
        extra = ["-Q", ",".join(queues)]
        self._start(name, lambda: self.processes.worker(self.env, name=name, extra=extra))

    def worker_without_acks_late(self, name: str, queues: Sequence[str] = QUEUES) -> None:
        """A worker of the project's app with ``task_acks_late`` off (:data:`NO_ACKS_LATE`)."""
        argv = [
            sys.executable,
            "-c",
            NO_ACKS_LATE,
            "-Q",
            ",".join(queues),
            "-l",
            "info",
            "--without-mingle",
            "--without-gossip",
            "-n",
            f"{name}@%h",
        ]
        self._start(name, lambda: self.processes.start(name, argv, self.env))

    def beat(self, name: str = "beat") -> None:
        """``celery -A <app> beat`` with the database scheduler."""
        self._start(name, lambda: self.processes.beat(self.env, name=name))

    def _start(self, name: str, starter: Callable[[], subprocess.Popen[bytes]]) -> None:
        self._starters[name] = starter
        starter()

    def worker_id(self, name: str) -> str:
        """The process's id in ``worker_heartbeats``: ``host:pid`` of its main process."""
        return f"{socket.gethostname()}:{self.processes.procs[name].pid}"

    def rows(self) -> dict[str, str]:
        """``worker_heartbeats``: each process's id and role."""
        return {w: r for w, r in self.db.rows("SELECT worker_id, role FROM worker_heartbeats")}

    def silent_s(self, name: str) -> float | None:
        """Seconds since the process's row last beat, by the database's clock (None: no row)."""
        value = self.db.scalar(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp() - beat_at) FROM worker_heartbeats "
            "WHERE worker_id = :w",
            w=self.worker_id(name),
        )
        return None if value is None else float(value)

    def wait_beating(self, *names: str) -> None:
        """Wait until each of ``names`` beats: its row (a worker's: once it is ready) was
        written less than two heartbeats ago."""
        for name in names:
            proc = self.processes.procs[name]

            def beating(name: str = name, proc: subprocess.Popen[bytes] = proc) -> bool:
                if proc.poll() is not None:
                    raise AssertionError(
                        f"{name} exited {proc.returncode}\n{self.processes.log(name)[-3000:]}"
                    )
                silent = self.silent_s(name)
                return silent is not None and silent < 2 * HEARTBEAT_S

            fresh = f"a fresh heartbeat row of {name}"
            wait_until(beating, START_TIMEOUT_S, interval=0.2, message=fresh)

    def ensure(self, *names: str) -> None:
        """Each of ``names`` running and beating: continued if suspended, started again if an
        earlier test stopped it."""
        for name in names:
            if name in self._stopped:
                self.resume(name)
            if self.processes.procs[name].poll() is not None:
                self._starters[name]()
        self.wait_beating(*names)

    def suspend(self, name: str) -> None:
        """SIGSTOP: the process lives on, frozen (a stalled worker)."""
        self._stopped.add(name)
        os.kill(self.processes.procs[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        proc = self.processes.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        self._stopped.discard(name)

    def stop(self, name: str) -> int:
        """SIGTERM, as a clean shutdown; its exit code once it has exited."""
        self.resume(name)
        proc = self.processes.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError(f"{name} did not stop on SIGTERM within 30 s") from None

    def close(self) -> None:
        for name in list(self._stopped):
            self.resume(name)
        self.processes.stop_all()
        self.db.close()

    # -- pa -------------------------------------------------------------------------------

    def pa(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``pa *args`` on this stack, with ``env`` overriding its environment."""
        return pa({**self.env, **env}, *args)

    def doctor(self, *args: str, **env: str) -> Doctor:
        return doctor({**self.env, **env}, *args)


@contextmanager
def stack(template: str, home: Path) -> Iterator[Stack]:
    """A :class:`Stack` on a fresh database cloned from ``template`` and a new key prefix;
    its processes stopped, its database dropped and its keys deleted afterwards."""
    name = f"pa_doc_{uuid.uuid4().hex[:12]}"
    url = create_database_from_template(name, template)
    prefix = f"pa-doctor-{uuid.uuid4().hex[:12]}:"
    running = Stack(environment(url, prefix, home), home / "processes")
    try:
        yield running
    finally:
        try:
            running.close()
        finally:
            drop_database(name)
            delete_redis_prefix(prefix)


def previous_revision(revision: str) -> str:
    """The migration before ``revision``, as the migration scripts say."""
    from alembic.script import ScriptDirectory

    from personal_assistant.database.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    down = script.get_revision(revision).down_revision
    assert isinstance(down, str), f"{revision} has no single parent: {down!r}"
    return down


@contextmanager
def database_at(revision: str) -> Iterator[str]:
    """The URL of a new, empty database migrated up to ``revision`` (not to head); dropped."""
    from personal_assistant.database import migrate

    name = f"pa_doc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = database_url(name)
        migrate.upgrade(url, revision)
        yield url
    finally:
        drop_database(name)


__all__ = [
    "HEARTBEAT_S",
    "NO_ACKS_LATE",
    "PA",
    "Doctor",
    "Stack",
    "database_at",
    "dead_url",
    "doctor",
    "environment",
    "pa",
    "previous_revision",
    "stack",
]
