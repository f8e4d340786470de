"""Figure: Alice's lateness with and without Bob's 10,000-run backlog (fair dispatch).

Real processes on the benchmark's database and Redis prefix: one ``celery beat`` (the project's
``DatabaseScheduler``) and one ``celery worker`` whose agent is a chat-completions server on
loopback that answers after ``DELAY`` seconds (a slow model, as in production). Three phases,
each on a fresh database: Alice alone; Alice while Bob's 10,000 runs are due, with the default
``USER_DISPATCH_LIMIT``; the same with the limit off (every due run into the broker at once, as
before fair dispatch). Lateness comes from the database: ``started_at - scheduled_for`` and
``finished_at - scheduled_for`` of Alice's runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from benchmarks.fixtures import (
    database,
    log,
    process_env,
    redis_prefix,
    start_celery,
    stop,
    token,
    utc_seconds,
    wait_until,
    worker_args,
)
from benchmarks.latency_bound import SlowServer, slow_server
from benchmarks.report import Figure, Row
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.workers.routing import worker_queues

KEY = "fairness"
TITLE = "Fairness: one user's backlog"
APP = "personal_assistant.workers.celery_app"
DELAY = 1.0  # seconds the model takes to answer
BACKLOG = 10_000  # Bob's runs, all due at once
ALICE_RUNS = 20
ALICE_SPREAD_S = 10.0  # Alice's runs fall due two a second, from a second after Bob's
LEAD_S = 6.0  # between loading the tasks and Bob's due instant (processes start meanwhile)
TARGET_RATIO = 2.0
MAX_IN_FLIGHT = 500
THREADS = 8

QUIET = "Alice alone"
FAIR = f"with Bob's {BACKLOG:,} due, USER_DISPATCH_LIMIT={{cap}}"
FIFO = f"with Bob's {BACKLOG:,} due, USER_DISPATCH_LIMIT=0 (off: as before)"

METHOD = """\
**What it means.** How late one user's runs are when another user has a large backlog. Before
fair dispatch every due run went into the broker at once, first in, first out, so Alice's run
waited for all of Bob's (issue 10: 2.5 s became 74 s). Now at most `USER_DISPATCH_LIMIT` runs
of a user are in the broker or running; the rest wait in PostgreSQL and are sent round robin
across users as room frees (`runs/fair_dispatch.py`). Target: Alice's lateness
with Bob's backlog within {ratio:g}x of her lateness alone (p50 and max of the finish lateness).

**How it was measured.** Three phases, each on a fresh database and Redis prefix, with one
`celery beat` (`DatabaseScheduler`, `SCHEDULER_TICK_SECONDS={tick}`) and one `celery worker`
(routed queues, threads pool `WORKER_CONCURRENCY={threads}`, `MAX_IN_FLIGHT={max_in_flight}`,
`AGENT=openai` at a chat-completions server on loopback, `benchmarks/slow_chat_server.py`, that
answers every request after {delay:g} s). Tasks are daily schedules loaded in one transaction
{lead:g} s before they fall due: in the busy phases Bob's {backlog:,} tasks all fall due at the
same second, and Alice's {alice} tasks two a second over the {spread:g} s that follow, starting
a second later; in the quiet phase only Alice's. When Alice's runs have all succeeded, their
lateness is read from the database: `started_at - scheduled_for` (start) and
`finished_at - scheduled_for` (finish; it includes the model's {delay:g} s). The notes give how
many of Bob's runs had finished by then: fair dispatch shares the workers, it does not stop Bob.
"""

_ALICE = b"""
SELECT
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - scheduled_for)),
    max(extract(epoch FROM started_at - scheduled_for)),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - scheduled_for)),
    max(extract(epoch FROM finished_at - scheduled_for)),
    max(finished_at)
FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id
WHERE t.user_id = %s AND r.state = 'succeeded'
"""

_INSERT = b"""
INSERT INTO ai_tasks (
    user_id, title, description, task_type, schedule_kind, schedule, timezone, next_run_at,
    status, ai_context, notification_channels, catch_up, max_retries, consecutive_failures,
    created_at, updated_at)
SELECT
    %(user)s, %(title)s || ' ' || g, 'Summarise what happened since the last run.', 'reminder',
    'daily',
    json_build_object(
        'kind', 'daily',
        'times', json_build_array(to_char(t.at AT TIME ZONE 'UTC', 'HH24:MI:SS')),
        'timezone', 'UTC'),
    'UTC', t.at, 'active', '{}'::json, '["in_app"]'::json, 'once', 3, 0, now(), now()
FROM generate_series(1, %(count)s) AS g
CROSS JOIN LATERAL (
    SELECT %(start)s::timestamptz + make_interval(secs => floor((g - 1) * %(step)s)) AS at
) AS t
"""


@dataclass(frozen=True)
class Phase:
    name: str
    start_p50: float
    start_max: float
    finish_p50: float
    finish_max: float
    bob_done: int  # Bob's runs finished when Alice's last one did


def _user(conn: psycopg.Connection[tuple[object, ...]], name: str) -> int:
    row = conn.execute(
        b"INSERT INTO users (display_name, timezone, created_at) VALUES (%s, 'UTC', now()) "
        b"RETURNING id",
        (name,),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _load(url: str, backlog: int, at: datetime) -> tuple[int, int]:
    """Bob's ``backlog`` tasks due at ``at``, Alice's due one by one from a second later."""
    with psycopg.connect(url) as conn:
        bob, alice = _user(conn, "Bob"), _user(conn, "Alice")
        conn.execute(b"SET LOCAL session_replication_role = replica")  # no per-row FK checks
        if backlog:
            conn.execute(
                _INSERT, {"user": bob, "title": "bob", "count": backlog, "start": at, "step": 0}
            )
        step = ALICE_SPREAD_S / ALICE_RUNS
        start = at + timedelta(seconds=1)
        conn.execute(
            _INSERT,
            {"user": alice, "title": "alice", "count": ALICE_RUNS, "start": start, "step": step},
        )
    return bob, alice


def _alice_succeeded(url: str, alice: int) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            b"SELECT count(*) FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
            b"WHERE t.user_id = %s AND r.state = 'succeeded'",
            (alice,),
        ).fetchone()
    return 0 if row is None else int(str(row[0]))


def _phase(name: str, backlog: int, cap: int | None, server: SlowServer) -> Phase:
    with (
        tempfile.TemporaryDirectory(prefix="pa-bench-fair-") as tmp,
        redis_prefix() as prefix,
        database() as url,
    ):
        home = Path(tmp)
        env = process_env(url, prefix, home)
        env.update(
            AGENT="openai",
            AGENT_BASE_URL=server.base_url,
            AGENT_MODEL="slow-bench-model",
            AGENT_TIMEOUT="30",
            RUN_TIMEOUT="120",
            MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
            WORKER_CONCURRENCY=str(THREADS),
        )
        if cap is not None:
            env["USER_DISPATCH_LIMIT"] = str(cap)
        at = utc_seconds(utcnow()) + timedelta(seconds=LEAD_S)
        bob, alice = _load(url, backlog, at)
        services = [
            start_celery(
                "worker", APP, worker_args(worker_queues(), f"bench-fair-{token()}"), env, home
            ),
            start_celery("beat", APP, ["beat", "-l", "warning"], env, home),
        ]
        try:
            wait_until(
                lambda: _alice_succeeded(url, alice) >= ALICE_RUNS,
                timeout=LEAD_S + ALICE_SPREAD_S + 30 + backlog * DELAY / 50,
                what=f"Alice's {ALICE_RUNS} runs ({name})",
                interval=0.25,
                watch=services,
            )
        finally:
            for service in services:
                stop(service)
        with psycopg.connect(url) as conn:
            row = conn.execute(_ALICE, (alice,)).fetchone()
            assert row is not None
            done = conn.execute(
                b"SELECT count(*) FROM task_runs r JOIN ai_tasks t ON t.id = r.task_id "
                b"WHERE t.user_id = %s AND r.state = 'succeeded' AND r.finished_at <= %s",
                (bob, row[4]),
            ).fetchone()
    s50, smax, f50, fmax = (float(str(v)) for v in row[:4])
    bob_done = 0 if done is None else int(str(done[0]))
    log(
        f"{name}: Alice's start lateness p50 {s50:.3f} s, max {smax:.3f} s; finish p50 "
        f"{f50:.3f} s, max {fmax:.3f} s; {bob_done:,} of Bob's runs finished by then"
    )
    return Phase(name, s50, smax, f50, fmax, bob_done)


def measure(quick: bool) -> Figure:
    backlog = 2_000 if quick else BACKLOG
    cap = Settings.model_fields["user_dispatch_limit"].default
    tick = Settings.model_fields["tick_seconds"].default
    fair_name = FAIR.format(cap=cap).replace(f"{BACKLOG:,}", f"{backlog:,}")
    fifo_name = FIFO.replace(f"{BACKLOG:,}", f"{backlog:,}")
    with slow_server(DELAY) as server:
        quiet = _phase(QUIET, 0, None, server)
        fair = _phase(fair_name, backlog, None, server)
        fifo = _phase(fifo_name, backlog, 0, server)
    rows: list[Row] = []
    for phase in (quiet, fair, fifo):
        rows.append(Row(f"{phase.name}: finish lateness p50", 1000 * phase.finish_p50, "ms"))
        rows.append(Row(f"{phase.name}: finish lateness max", 1000 * phase.finish_max, "ms"))
    target = f"<= {TARGET_RATIO:g}x"
    for label, busy, alone in (
        ("p50", fair.finish_p50, quiet.finish_p50),
        ("max", fair.finish_max, quiet.finish_max),
    ):
        ratio = busy / alone
        rows.append(
            Row(
                f"with Bob's backlog / alone, finish lateness {label}",
                ratio,
                "x",
                target=target,
                met=ratio <= TARGET_RATIO,
            )
        )
    rows.append(
        Row("limit off / alone, finish lateness p50", fifo.finish_p50 / quiet.finish_p50, "x")
    )
    notes = tuple(
        f"{p.name}: start lateness p50 {1000 * p.start_p50:,.0f} ms, max "
        f"{1000 * p.start_max:,.0f} ms; {p.bob_done:,} of Bob's runs had finished when "
        f"Alice's last one did."
        for p in (quiet, fair, fifo)
    )
    return Figure(
        KEY,
        TITLE,
        tuple(rows),
        method=METHOD.format(
            ratio=TARGET_RATIO,
            tick=tick,
            threads=THREADS,
            max_in_flight=MAX_IN_FLIGHT,
            delay=DELAY,
            lead=LEAD_S,
            backlog=backlog,
            alice=ALICE_RUNS,
            spread=ALICE_SPREAD_S,
        ),
        notes=notes,
        params={
            "backlog": backlog,
            "alice_runs": ALICE_RUNS,
            "model_delay_s": DELAY,
            "user_dispatch_limit": cap,
            "max_in_flight": MAX_IN_FLIGHT,
        },
    )
