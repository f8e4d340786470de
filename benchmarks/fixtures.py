"""What every benchmark stands on: its own database, its own Redis keys, bulk data, processes.

* :func:`database` creates ``bench_<random>``, migrates it with the project's migrations and
  drops it ``WITH (FORCE)`` at the end.
* :func:`redis_prefix` hands out a key prefix (kombu's ``global_keyprefix``) and deletes the keys
  under it, and only those, at the end. Redis is never flushed.
* :func:`load_tasks` bulk-loads tasks with ``INSERT ... SELECT generate_series`` (a million rows
  in seconds), with daily schedules whose time of day is their ``next_run_at``.
* :func:`start_celery` starts a real ``celery`` worker or beat as a subprocess in its own session;
  :func:`stop` ends it by its process group id, with a bounded wait.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import psycopg
import redis
from sqlalchemy.engine import make_url

from benchmarks.process_tree import cpu_seconds
from personal_assistant.config import Settings
from personal_assistant.database import migrate

ROOT = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).with_name("celery")
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

TaskKinds = Literal["reminder", "mixed"]


# --- What a benchmark created, for cleaning up after a benchmark process that was killed -------

REGISTRY_ENV = "BENCH_REGISTRY"


def register(kind: str, value: str) -> None:
    """Note a database, key prefix or service in the file named by ``$BENCH_REGISTRY``."""
    path = os.environ.get(REGISTRY_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as registry:
            registry.write(f"{kind} {value}\n")


def _owned_service(pid: int, prefix: str) -> bool:
    """True if ``pid`` is still a celery process started with our key prefix (not a reused pid)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"REDIS_KEY_PREFIX={prefix}".encode() in environ


def clean_up_registered(path: Path) -> list[str]:
    """Stop the services, drop the databases and delete the keys a registry lists.

    Called after each benchmark process ends, however it ended; what the benchmark already
    cleaned up itself is simply not found again. Returns what had to be cleaned.
    """
    if not path.exists():
        return []
    cleaned: list[str] = []
    entries = [line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines()]
    for kind, value in entries:
        if kind == "service":
            pid_text, _, prefix = value.partition(" ")
            pid = int(pid_text)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not _owned_service(pid, prefix):
                    break
                cleaned.append(f"{sig.name} service {pid}")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)
                deadline = time.monotonic() + 15
                while _owned_service(pid, prefix) and time.monotonic() < deadline:
                    time.sleep(0.2)
    for kind, value in entries:
        if kind == "database":
            drop_database(value)
        elif kind == "prefix" and delete_prefixed(value):
            cleaned.append(f"keys under {value}")
    return cleaned


def log(message: str) -> None:
    """Progress, one line, flushed (children share the terminal with the parent)."""
    print(f"  [{datetime.now():%H:%M:%S}] {message}", flush=True)


def token() -> str:
    return secrets.token_hex(5)


def utc_seconds(moment: datetime) -> datetime:
    """``moment`` without its fraction of a second (schedules hold whole seconds)."""
    return moment.astimezone(UTC).replace(microsecond=0)


# --- PostgreSQL ----------------------------------------------------------------------------------


def _database_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@contextmanager
def database() -> Iterator[str]:
    """A new, migrated database; yields its URL and drops it at the end, whatever happens."""
    name = f"bench_{token()}"
    register("database", name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _database_url(name)
        migrate.upgrade(url)
        yield url
    finally:
        drop_database(name)


def drop_database(name: str) -> None:
    assert name.startswith("bench_"), name
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def execute(url: str, *statements: str) -> None:
    """Run statements outside a transaction (``VACUUM`` needs that)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def vacuum(url: str, *tables: str) -> None:
    execute(url, *(f"VACUUM (ANALYZE) {table}" for table in tables))


def scalar(url: str, query: str, params: Mapping[str, object] | None = None) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode(), params).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class Loaded:
    first_id: int
    last_id: int
    seconds: float

    @property
    def count(self) -> int:
        return self.last_id - self.first_id + 1


_INSERT_TASKS = """
INSERT INTO ai_tasks (
    user_id, title, description, task_type, schedule_kind, schedule, timezone, next_run_at,
    status, ai_context, notification_channels, catch_up, max_retries, consecutive_failures,
    created_at, updated_at)
SELECT
    u.first_user + (g %% %(users)s),
    'bench task ' || g,
    'Summarise what happened since the last run.',
    CASE WHEN %(mixed)s AND g %% 2 = 0 THEN 'periodic_task' ELSE 'reminder' END,
    'daily',
    json_build_object(
        'kind', 'daily',
        'times', json_build_array(to_char(t.at AT TIME ZONE 'UTC', 'HH24:MI:SS')),
        'timezone', 'UTC'),
    'UTC', t.at, 'active', '{}'::json, '["in_app"]'::json, 'once', 3, 0, now(), now()
FROM generate_series(1, %(count)s) AS g
CROSS JOIN (SELECT min(id) AS first_user FROM users) AS u
CROSS JOIN LATERAL (
    SELECT %(start)s::timestamptz
        + make_interval(secs => floor((g - 1)::float8 * %(spread)s / %(count)s)) AS at
) AS t
"""


def load_tasks(
    url: str,
    count: int,
    *,
    start: datetime,
    spread_s: float = 0.0,
    kinds: TaskKinds = "reminder",
    users: int = 1000,
) -> Loaded:
    """Insert ``count`` active daily tasks; ``next_run_at`` from ``start`` over ``spread_s``.

    Each task's schedule fires at its ``next_run_at`` time of day (whole seconds), so after a
    claim its next firing is a day later. Tasks belong to ``users`` users (created once).
    ``kinds="mixed"`` makes every other task a ``periodic_task`` (its runs read history).
    """
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        have = conn.execute(b"SELECT count(*) FROM users").fetchone()
        if have is None or have[0] == 0:
            conn.execute(
                b"INSERT INTO users (display_name, timezone, created_at) "
                b"SELECT 'bench user ' || g, 'UTC', now() FROM generate_series(1, %(n)s) g",
                {"n": users},
            )
            have = (users,)
        # Skip the per-row foreign key trigger: every user_id is valid by construction, and the
        # check would double the load time.
        conn.execute(b"SET LOCAL session_replication_role = replica")
        conn.execute(
            _INSERT_TASKS.encode(),
            {
                "users": int(have[0]),
                "mixed": kinds == "mixed",
                "count": count,
                "start": utc_seconds(start),
                "spread": spread_s,
            },
        )
        row = conn.execute(b"SELECT max(id) FROM ai_tasks").fetchone()
        assert row is not None
        last = int(row[0])
    return Loaded(last - count + 1, last, time.perf_counter() - began)


_INSERT_TASKS_AT_RATE = """
INSERT INTO ai_tasks (
    user_id, title, description, task_type, schedule_kind, schedule, timezone, next_run_at,
    status, ai_context, notification_channels, catch_up, max_retries, consecutive_failures,
    created_at, updated_at)
SELECT
    u.first_user + (g %% u.users),
    'bench task at rate ' || g,
    'Summarise what happened since the last run.',
    'reminder',
    'daily',
    json_build_object(
        'kind', 'daily',
        'times', json_build_array(to_char(t.at AT TIME ZONE 'UTC', 'HH24:MI:SS')),
        'timezone', 'UTC'),
    'UTC', t.at, 'active', '{}'::json, '["in_app"]'::json, 'once', 3, 0, now(), now()
FROM generate_series(0, %(count)s - 1) AS g
CROSS JOIN (SELECT min(id) AS first_user, count(*) AS users FROM users) AS u
CROSS JOIN LATERAL (
    SELECT %(start)s::timestamptz + make_interval(secs => g::float8 / %(per_second)s) AS at
) AS t
"""


def load_tasks_at_rate(url: str, count: int, *, start: datetime, per_second: float) -> Loaded:
    """Insert ``count`` active daily reminders falling due evenly at ``per_second`` from ``start``.

    Unlike :func:`load_tasks`, each ``next_run_at`` is its own instant, ``start + i /
    per_second`` (microseconds kept), not rounded to whole seconds. The daily schedule's time
    of day is that instant's whole second, so after its claim a task's next firing is the next
    day. Tasks are spread over the users already in the table (load some with
    :func:`load_tasks` first).
    """
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        have = conn.execute(b"SELECT count(*) FROM users").fetchone()
        if have is None or have[0] == 0:
            raise RuntimeError("load_tasks_at_rate needs users: call load_tasks first")
        conn.execute(b"SET LOCAL session_replication_role = replica")  # as in load_tasks
        conn.execute(
            _INSERT_TASKS_AT_RATE.encode(),
            {"count": count, "start": start.astimezone(UTC), "per_second": per_second},
        )
        row = conn.execute(b"SELECT max(id) FROM ai_tasks").fetchone()
        assert row is not None
        last = int(row[0])
    return Loaded(last - count + 1, last, time.perf_counter() - began)


def dead_tuples(url: str, table: str) -> tuple[int, int]:
    """(dead tuples, autovacuum runs so far) from ``pg_stat_user_tables``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            b"SELECT n_dead_tup, autovacuum_count FROM pg_stat_user_tables WHERE relname = %s",
            (table,),
        ).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


# --- Redis ---------------------------------------------------------------------------------------


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def delete_prefixed(prefix: str) -> int:
    """Delete the keys under ``prefix`` (and nothing else); returns how many."""
    assert prefix.startswith("bench_") and prefix.endswith(":"), prefix
    client = redis_client()
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    client.close()
    return deleted


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix; the keys under it are deleted at the end."""
    prefix = f"bench_{token()}:"
    register("prefix", prefix)
    try:
        yield prefix
    finally:
        delete_prefixed(prefix)


def queue_depth(prefix: str, queue: str = "ai_tasks") -> int:
    client = redis_client()
    try:
        return int(client.llen(f"{prefix}{queue}"))
    finally:
        client.close()


# --- Settings and processes ----------------------------------------------------------------------


def make_settings(database_url: str, prefix: str, home: Path | None = None) -> Settings:
    """The project's settings for one benchmark (explicit values; the environment is ignored)."""
    return Settings.model_validate(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": prefix,
            "PA_HOME": str(home or ROOT),
            "LOG_LEVEL": "WARNING",
            "AGENT": "offline",
        }
    )


def process_env(database_url: str, prefix: str, home: Path) -> dict[str, str]:
    """The environment of a worker or beat: the same settings as :func:`make_settings`.

    Only the basics are inherited, so that no stray setting (``RUNS_PER_MESSAGE``...) makes the
    processes differ from the benchmark's own ``Settings``.
    """
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=prefix,
        PA_HOME=str(home),
        LOG_DIR=str(home),
        LOG_LEVEL="WARNING",
        AGENT="offline",
        PYTHONPATH=str(ROOT),
    )
    return env


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads), from /proc."""
        return cpu_seconds(self.proc.pid)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_celery(
    name: str, app: str, args: Sequence[str], env: Mapping[str, str], home: Path
) -> Service:
    """``celery -A app *args`` in its own session, output to ``home/<name>.log``."""
    log_path = home / f"{name}.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [str(CELERY), "-A", app, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=home,
            start_new_session=True,
        )
    register("service", f"{proc.pid} {env.get('REDIS_KEY_PREFIX', '')}")
    return Service(name, proc, log_path)


def worker_args(queues: str, name: str) -> list[str]:
    """The worker as the brief runs it: the config's pool and concurrency, no mingle/gossip."""
    return [
        "worker",
        "-l",
        "warning",
        "--without-mingle",
        "--without-gossip",
        "-Q",
        queues,
        "-n",
        f"{name}@%h",
    ]


def stop(service: Service, timeout: float = 20.0) -> None:
    """SIGTERM the service's process group (its id is the service's pid), then SIGKILL."""
    proc = service.proc
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


#: How often a benchmark reads the database for the runs it waits on. Each read opens a
#: connection and counts the runs of one instant over all of ``task_runs``: 23 ms end to end
#: (20,000 runs a phase, connecting included), four a second taken from the two cores the
#: system measured runs on. The figures come from the runs' own timestamps, not from the reads.
RUNS_POLL_S = 1.0


def wait_until(
    done: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    watch: Sequence[Service] = (),
) -> float:
    """Poll ``done`` until true; returns the seconds waited. Fails fast if a service died."""
    began = time.monotonic()
    while True:
        if done():
            return time.monotonic() - began
        for service in watch:
            if not service.alive():
                raise RuntimeError(
                    f"{service.name} exited ({service.proc.returncode}) while waiting for "
                    f"{what}; its log ends:\n{service.tail()}"
                )
        if time.monotonic() - began > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def results_done(prefix: str, ids: Sequence[str]) -> list[datetime]:
    """``date_done`` of every Celery result stored under ``prefix`` among ``ids``.

    Missing results are left out; a result that is not SUCCESS is an error.
    """
    client = redis_client()
    done: list[datetime] = []
    try:
        for i in range(0, len(ids), 1000):
            keys = [f"{prefix}celery-task-meta-{task_id}" for task_id in ids[i : i + 1000]]
            for raw in client.mget(keys):
                if raw is None:
                    continue
                meta = json.loads(raw)
                if meta.get("status") != "SUCCESS":
                    raise RuntimeError(f"a task ended {meta.get('status')}: {meta}")
                moment = datetime.fromisoformat(meta["date_done"])
                done.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    finally:
        client.close()
    return done
