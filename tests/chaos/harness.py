"""One chaos scenario's stack, its load, and the invariants checked at its end.

A :class:`Chaos` owns a database on the suite's own PostgreSQL cluster, a Redis server of its
own, a webhook receiver, and the worker and beat processes it starts. The load is one-shot
tasks firing at known instants (so every scheduled firing is known in advance), each notifying
``in_app`` and a webhook channel. :meth:`Chaos.outcome` checks, on the database and on what the
webhook received:

* every scheduled firing has exactly one run (``lost``: none, ``duplicated``: more than one);
* every run ends in a final state (``stuck``: queued, running or retrying at the end);
* every notification row is delivered, and the webhook received each one once, or again under
  the same ``Idempotency-Key`` (``redelivered``: at-least-once delivery, dropped by the key).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chaos.servers import PostgresServer, RedisServer
from personal_assistant.database import migrate
from personal_assistant.database.engine import make_async_engine
from personal_assistant.notifications import channel_store
from personal_assistant.notifications.transports import apprise_urls
from personal_assistant.tasks.manager import AITaskManager
from support.chat_server import ChatServer, calls_per_attempt
from support.hook_server import HookServer
from support.keys import CHANNEL_KEY, CIPHER
from support.processes import ProcessGroup
from support.stack import Db, settings_for

FINAL = ("succeeded", "failed", "skipped")
HOOK = "hook"

#: Timings shortened so that recovery paths (leases, the reaper, re-dispatch) act in seconds.
FAST: dict[str, str] = {
    "SCHEDULER_TICK_SECONDS": "0.2",
    "DISPATCH_LEASE": "3",
    "REAPER_INTERVAL": "1",
    "RUN_TIMEOUT": "8",
    "LEASE_MARGIN": "2",
    "BROKER_VISIBILITY_TIMEOUT": "60",
    "RETRY_BASE_SECONDS": "0.5",
    "RETRY_MAX_SECONDS": "2",
    "MAX_RETRIES": "5",
    "DELIVERY_LEASE": "5",
    "RUNS_PER_MESSAGE": "20",
    # The scenarios load one user's runs; a per-user cap would only pace that load, and some
    # need every run in the broker at once (a 10,000-message backlog). Fair dispatch has its
    # own tests (tests/integration/test_fair_dispatch.py, benchmarks/fairness.py).
    "USER_DISPATCH_LIMIT": "0",
}


@dataclass
class Outcome:
    """One row of the reliability table."""

    scenario: str
    scheduled: int
    completed: int
    lost: int
    duplicated: int
    stuck: int
    notifications_duplicated: int
    notifications_redelivered: int
    notifications_undelivered: int
    recover_s: float | None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: The most requests the agent received for one attempt of one run (``X-PA-Run``); must
    #: be 1. None when the scenario's agent is not a chat server (the offline agent).
    agent_calls_per_attempt: int | None = None

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.stuck
            or self.notifications_duplicated
            or self.notifications_undelivered
        )

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Load:
    """Tasks seeded for a scenario: firing instant per task id."""

    fires_at: Mapping[int, datetime]

    @property
    def first(self) -> datetime:
        return min(self.fires_at.values())

    @property
    def last(self) -> datetime:
        return max(self.fires_at.values())


class Chaos:
    def __init__(self, name: str, pg: PostgresServer, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.redis = RedisServer(workdir / "redis")
        self.database_url = pg.create_database(f"chaos_{name}_{uuid.uuid4().hex[:8]}")
        migrate.upgrade(self.database_url)
        self.db = Db(self.database_url)
        self.hook = HookServer()
        self.processes = ProcessGroup(workdir / "logs")
        self.env: dict[str, str] = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "PA_HOME": str(workdir),
            "CHANNEL_KEYS": CHANNEL_KEY,
            "OUTBOUND_ALLOW": "127.0.0.0/8",  # the webhook receiver is on loopback
            "LOG_DIR": str(workdir / "logs"),
            **FAST,
        }
        self.user_id = 0

    # --- set-up ----------------------------------------------------------------------------

    def __enter__(self) -> Chaos:
        self.redis.start()
        self.hook.__enter__()
        self.user_id = asyncio.run(self._seed_user())
        return self

    def __exit__(self, *exc: object) -> None:
        self.processes.stop_all()
        self.hook.__exit__(None, None, None)
        self.redis.__exit__(None, None, None)
        self.db.close()

    def settings_env(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **overrides}

    async def _seed_user(self) -> int:
        async with AITaskManager(settings_for(self.env)) as manager:
            user = await manager.create_user("Chaos", timezone="Europe/Paris")
        engine = make_async_engine(self.database_url, pooled=False)
        try:
            async with engine.begin() as conn:
                spec = apprise_urls.validate(HOOK, self.hook.url())
                await channel_store.add(conn, user.id, spec, cipher=CIPHER, now=datetime.now(UTC))
        finally:
            await engine.dispose()
        return user.id

    def seed_one_shots(
        self,
        count: int,
        *,
        start: datetime | None = None,
        spread: timedelta,
        title: str = "chaos",
        context: Mapping[str, Any] | None = None,
        task_type: str = "periodic_task",
        max_retries: int | None = None,
    ) -> Load:
        """``count`` one-shot tasks firing evenly over ``spread`` from ``start``.

        ``start=None``: soon after the tasks are created (creating one takes milliseconds).
        """
        if start is None:
            start = datetime.now(UTC) + timedelta(seconds=3 + count * 0.06)
        step = spread / max(1, count)
        instants = [start + i * step for i in range(count)]

        async def create() -> dict[int, datetime]:
            created: dict[int, datetime] = {}
            async with AITaskManager(settings_for(self.env)) as manager:
                for i, at in enumerate(instants):
                    task = await manager.create_task(
                        self.user_id,
                        f"{title} {i:05d}",
                        task_type=task_type,
                        schedule={"kind": "once", "at": at.isoformat()},
                        ai_context=dict(context or {}),
                        notification_channels=["in_app", HOOK],
                        max_retries=max_retries,
                    )
                    created[task.id] = at
            return created

        return Load(asyncio.run(create()))

    # --- processes -------------------------------------------------------------------------

    def worker(
        self,
        name: str = "worker",
        extra: Sequence[str] = (),
        runner: Sequence[str] = ("-m", "celery"),
        **env: str,
    ) -> int:
        proc = self.processes.worker(
            self._env_for(runner, env), name=name, extra=extra, runner=runner
        )
        return proc.pid

    def _env_for(self, runner: Sequence[str], env: dict[str, str]) -> dict[str, str]:
        """The process's environment; a wrapper module of ``tests/`` needs it on the path."""
        if tuple(runner) == ("-m", "celery"):
            return self.settings_env(**env)
        tests = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
        return self.settings_env(PYTHONPATH=path, **env)

    def blocking_worker(self, name: str, trigger: Path, **env: str) -> int:
        """A worker whose event loop blocks when ``trigger`` appears (:mod:`chaos.blocking_worker`).

        Added for scenario "live worker, loop blocked 2x the lease" (``test_live_worker.py``).
        """
        return self.worker(name, runner=("-m", "chaos.blocking_worker", str(trigger)), **env)

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        """Until the worker ``name`` has said it is ready (it consumes from then on)."""
        deadline = time.monotonic() + timeout
        while " ready." not in self.processes.log(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {name} not ready after {timeout} s")
            time.sleep(0.2)

    def beat(self, name: str = "beat", runner: Sequence[str] = ("-m", "celery"), **env: str) -> int:
        return self.processes.beat(self._env_for(runner, env), name=name, runner=runner).pid

    # --- observing -------------------------------------------------------------------------

    def counts(self) -> Counter[str]:
        rows = self.db.rows("SELECT state, count(*) FROM task_runs GROUP BY state")
        return Counter({state: int(n) for state, n in rows})

    def final_runs(self, due_before: datetime | None = None) -> int:
        sql = "SELECT count(*) FROM task_runs WHERE state IN ('succeeded', 'failed', 'skipped')"
        if due_before is None:
            return int(self.db.scalar(sql))
        return int(self.db.scalar(sql + " AND scheduled_for <= :t", t=due_before))

    def wait_caught_up(self, load: Load, since: float, *, timeout: float) -> float | None:
        """Seconds from ``since`` (monotonic) until every firing due by now has a final run."""
        cutoff = datetime.now(UTC)
        due = sum(1 for at in load.fires_at.values() if at <= cutoff)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.final_runs(cutoff) >= due:
                return time.monotonic() - since
            time.sleep(0.2)
        return None

    def settle(self, load: Load, *, timeout: float) -> bool:
        """Wait until every firing has a final run and no notification is pending."""
        deadline = time.monotonic() + timeout
        sleep_until(load.last)
        while time.monotonic() < deadline:
            # The runs first: a run's notification rows are written with its final state, so
            # once every run is final, no pending row means every row was delivered. Read the
            # other way round, a run recorded between the two reads left its rows pending
            # after this said settled (a SIGTERM scenario saw 1 of 200 rows undelivered).
            if self.final_runs() >= len(load.fires_at) and not self.db.scalar(
                "SELECT count(*) FROM notifications WHERE status = 'pending'"
            ):
                return True
            time.sleep(0.25)
        return False

    def outcome(
        self,
        load: Load,
        recover_s: float | None,
        notes: str = "",
        *,
        agent: ChatServer | None = None,
    ) -> Outcome:
        """The row; ``agent``: the chat server the workers called, to count calls per attempt."""
        tasks = list(load.fires_at)
        per_firing = self.db.rows(
            "SELECT task_id, scheduled_for, count(*) AS n FROM task_runs "
            "WHERE task_id = ANY(:ids) GROUP BY task_id, scheduled_for",
            ids=tasks,
        )
        with_run = {row.task_id for row in per_firing}
        duplicated = sum(int(row.n) - 1 for row in per_firing if row.n > 1)
        # A one-shot fires at its instant: a run for any other instant is a duplicate too.
        duplicated += sum(
            1 for row in per_firing if _utc(row.scheduled_for) != _utc(load.fires_at[row.task_id])
        )
        states = Counter(
            {
                state: int(n)
                for state, n in self.db.rows(
                    "SELECT state, count(*) FROM task_runs WHERE task_id = ANY(:ids) "
                    "GROUP BY state",
                    ids=tasks,
                )
            }
        )
        completed = sum(states[s] for s in FINAL)
        stuck = sum(n for s, n in states.items() if s not in FINAL)
        undelivered = int(
            self.db.scalar(
                "SELECT count(*) FROM notifications WHERE task_id = ANY(:ids) "
                "AND status <> 'delivered'",
                ids=tasks,
            )
        )
        redelivered, notified_twice, distinct = self._webhook_copies()
        hook_rows = int(
            self.db.scalar(
                "SELECT count(*) FROM notifications WHERE task_id = ANY(:ids) "
                "AND channel = :c AND status = 'delivered'",
                ids=tasks,
                c=HOOK,
            )
        )
        if distinct != hook_rows:  # a delivered row the hook never saw, or the reverse
            seen = f"webhook saw {distinct} notifications for {hook_rows} rows"
            notes = f"{notes}; {seen}" if notes else seen
        return Outcome(
            scenario=self.name,
            scheduled=len(tasks),
            completed=completed,
            lost=len(tasks) - len(with_run),
            duplicated=duplicated,
            stuck=stuck,
            notifications_duplicated=notified_twice,
            notifications_redelivered=redelivered,
            notifications_undelivered=undelivered,
            recover_s=None if recover_s is None else round(recover_s, 1),
            notes=notes,
            extra={"states": dict(states), **self._timings(tasks), **_agent_calls(agent)},
            agent_calls_per_attempt=_most_calls(agent),
        )

    def _webhook_copies(self) -> tuple[int, int, int]:
        """``(redelivered, duplicated, distinct)`` of what the webhook accepted.

        Every attempt to deliver one notification carries the same ``Idempotency-Key``. A
        second copy under the same key (a worker killed after sending, before recording it) is
        *redelivered*: at-least-once delivery that the receiver drops by its key. The same
        content under two keys, or twice without a key, is *duplicated*: no receiver could
        tell the copies apart.
        """
        accepted = [
            key
            for (_, status), key in zip(self.hook.requests, self.hook.keys, strict=True)
            if 200 <= status < 300
        ]
        by_content: dict[tuple[Any, Any], list[str | None]] = {}
        for body, key in zip(self.hook.received, accepted, strict=True):
            by_content.setdefault((body.get("title"), body.get("message")), []).append(key)
        redelivered = duplicated = 0
        for keys in by_content.values():
            named = [k for k in keys if k is not None]
            redelivered += len(named) - len(set(named))
            duplicated += max(0, len(set(named)) + (len(keys) - len(named)) - 1)
        return redelivered, duplicated, len(by_content)

    def _timings(self, tasks: list[int]) -> dict[str, Any]:
        row = self.db.rows(
            "SELECT count(*) FILTER (WHERE attempt > 1) AS retried, "
            "max(extract(epoch FROM finished_at - scheduled_for)) AS worst, "
            "percentile_cont(0.5) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM finished_at - scheduled_for)) AS median "
            "FROM task_runs WHERE task_id = ANY(:ids)",
            ids=tasks,
        )[0]
        return {
            "retried": int(row.retried),
            "worst_finish_s": None if row.worst is None else round(float(row.worst), 1),
            "median_finish_s": None if row.median is None else round(float(row.median), 1),
        }

    def logs(self, *names: str) -> str:
        return "\n".join(f"--- {n}\n{self.processes.log(n)[-3000:]}" for n in names)


def _most_calls(agent: ChatServer | None) -> int | None:
    if agent is None:
        return None
    calls = calls_per_attempt(agent.received)
    return max(calls.values(), default=0)


def _agent_calls(agent: ChatServer | None) -> dict[str, Any]:
    if agent is None:
        return {}
    calls = calls_per_attempt(agent.received)
    return {
        "agent_calls": sum(calls.values()),
        "agent_attempts": len(calls),
        "agent_calls_unnamed": calls.get("", 0),  # no X-PA-Run header: not counted per attempt
    }


def sleep_until(when: datetime) -> None:
    wait = (when - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    started = time.monotonic()
    yield lambda: time.monotonic() - started


def seed_one_shots_bulk(
    chaos: Chaos,
    count: int,
    *,
    at: datetime,
    title: str = "chaos",
    context: Mapping[str, Any] | None = None,
    max_retries: int | None = None,
    channels: Sequence[str] | None = None,
) -> Load:
    """``count`` one-shot tasks all firing at ``at``, inserted in bulk (10,000 in about a second).

    Added for scenario 4 (``test_many_schedulers.py``). The first task is created by
    :meth:`AITaskManager.create_task`, as in :meth:`Chaos.seed_one_shots`; the others are
    copies of its row made by one ``INSERT ... SELECT``, every column identical but the id and
    the title (``"<title> 00001"``...), so they are exactly the rows the manager would have
    made. ``channels``: instead of ``in_app`` and the webhook (the manager validated both).
    """
    template = next(
        iter(
            chaos.seed_one_shots(
                1,
                start=at,
                spread=timedelta(0),
                title=title,
                context=context,
                max_retries=max_retries,
            ).fires_at
        )
    )
    if channels is not None:
        assert set(channels) <= {"in_app", HOOK}, channels
        chaos.db.execute(
            "UPDATE ai_tasks SET notification_channels = CAST(:c AS json) WHERE id = :t",
            c=json.dumps(list(channels)),
            t=template,
        )
    columns = [
        name
        for (name,) in chaos.db.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'ai_tasks' AND column_name NOT IN ('id', 'title') "
            "ORDER BY ordinal_position"
        )
    ]
    listed = ", ".join(columns)
    chaos.db.execute(
        f"INSERT INTO ai_tasks (title, {listed}) "  # column names from the catalogue
        f"SELECT :title || ' ' || lpad(g::text, 5, '0'), {listed} "
        "FROM ai_tasks CROSS JOIN generate_series(1, :n) AS g WHERE id = :template "
        "ORDER BY g",
        title=title,
        n=count - 1,
        template=template,
    )
    ids = [
        int(task_id)
        for (task_id,) in chaos.db.rows(
            "SELECT id FROM ai_tasks WHERE id >= :template AND title LIKE :prefix ORDER BY id",
            template=template,
            prefix=f"{title} %",
        )
    ]
    assert len(ids) == count, (len(ids), count)
    return Load(dict.fromkeys(ids, at))


def fresh_database(pg: PostgresServer, prefix: str) -> str:
    """A new, migrated database on the suite's cluster, for a scenario that needs no processes.

    Added for scenarios 8 and 9 (``test_dst_catchup.py``, ``test_bad_input.py``): they drive the
    scheduler step, the manager and the CLI directly, so they need a database but neither Redis
    nor the webhook receiver of :class:`Chaos`. It goes with the cluster at the end of the
    session.
    """
    url = pg.create_database(f"{prefix}_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    return url


def seed_one_shots_spread_bulk(
    chaos: Chaos,
    count: int,
    *,
    start: datetime,
    spread: timedelta,
    title: str = "chaos",
    context: Mapping[str, Any] | None = None,
) -> Load:
    """``count`` one-shot tasks firing evenly over ``spread`` from ``start``, inserted in bulk.

    Added for scenarios 2 and 3 (``test_redis_faults.py``, ``test_postgres_faults.py``): like
    :meth:`Chaos.seed_one_shots`, but in about a second whatever the machine's load, so that
    the firings start when the processes are up and a fault lands under load as planned. The
    first task is made by :meth:`AITaskManager.create_task`; the others copy its row, with
    their own title, instant (``next_run_at``) and ``schedule.at``.
    """
    step = spread / max(1, count)
    template = next(
        iter(
            chaos.seed_one_shots(
                1, start=start, spread=timedelta(0), title=title, context=context
            ).fires_at
        )
    )
    stored = chaos.db.scalar("SELECT schedule::text FROM ai_tasks WHERE id = :t", t=template)
    schedule = json.loads(stored)
    assert schedule.get("at") == start.astimezone(UTC).isoformat(), schedule  # the copies' form
    instants = [start + i * step for i in range(1, count)]
    columns = [
        name
        for (name,) in chaos.db.rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ai_tasks' "
            "AND column_name NOT IN ('id', 'title', 'schedule', 'next_run_at') "
            "ORDER BY ordinal_position"
        )
    ]
    listed = ", ".join(columns)
    chaos.db.execute(
        f"INSERT INTO ai_tasks (title, schedule, next_run_at, {listed}) "  # catalogue names
        f"SELECT :title || ' ' || lpad(s.n::text, 5, '0'), s.schedule::json, s.at, {listed} "
        "FROM ai_tasks CROSS JOIN unnest(CAST(:ats AS timestamptz[]), CAST(:schedules AS text[])) "
        "WITH ORDINALITY AS s(at, schedule, n) WHERE id = :template ORDER BY s.n",
        title=title,
        ats=instants,
        schedules=[
            json.dumps({**schedule, "at": at.astimezone(UTC).isoformat()}) for at in instants
        ],
        template=template,
    )
    rows = chaos.db.rows(
        "SELECT id, next_run_at FROM ai_tasks WHERE id > :template AND title LIKE :prefix "
        "ORDER BY id",
        template=template,
        prefix=f"{title} %",
    )
    assert len(rows) == count - 1, (len(rows), count)
    return Load({template: start, **{int(r.id): _utc(r.next_run_at) for r in rows}})
