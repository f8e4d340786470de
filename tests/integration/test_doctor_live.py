"""``pa doctor`` and ``pa status`` against real stacks, healthy and with each fault the issue
lists: doctor must name the fault (the check's verdict, and the queue, worker, policy or
revision in its evidence), and ``pa status`` must exit 1 with no worker, no scheduler or no
broker.

One healthy stack (a worker on the five queues and beat, :mod:`support.doctor_stack`) is shared
by the module: one ``pa doctor --canary`` run gives the healthy report, the canary's figures and
the JUnit and Markdown files; then the faults that only change a URL (Redis down, PostgreSQL
down), the stalled worker (the worker stopped with SIGSTOP, continued afterwards) and, last,
the stopped beat. A second stack has beat and a misconfigured worker: on four queues, its app
without late acks; it is stopped last, for the "no worker" case. The faults of the broker and
the schema need no process: a throw-away ``redis-server`` with ``allkeys-lru``, a database one
migration behind, a RabbitMQ virtual host with a non-durable queue. Processes beat every
second, so a stopped one is stale after three seconds; every wait is by condition, with a
deadline.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from chaos.servers import RedisServer
from personal_assistant.database.migrate import HEAD
from personal_assistant.health.heartbeat import STALE_AFTER_BEATS
from personal_assistant.workers.routing import QUEUES
from support import rabbitmq
from support.doctor_stack import (
    HEARTBEAT_S,
    Doctor,
    Stack,
    database_at,
    dead_url,
    previous_revision,
    stack,
)
from support.processes import wait_until
from support.services import REDIS_URL, redis_available, require

pytestmark = pytest.mark.integration

#: Silent for longer than this, a process's row is stale (``STALE_AFTER_BEATS`` heartbeats).
STALE_S = STALE_AFTER_BEATS * HEARTBEAT_S
#: The stages of the canary's run, each a figure of ``canary.run`` in milliseconds.
CANARY_STAGES = ("queued", "published", "running", "succeeded", "notified", "due_to_notified")


@pytest.fixture(scope="module")
def redis_up() -> None:
    require(redis_available(), f"Redis ({REDIS_URL})")


@pytest.fixture(scope="module")
def healthy(
    pg_template: str, redis_up: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A worker on the five queues and beat, shared by the module."""
    with stack(pg_template, tmp_path_factory.mktemp("healthy")) as running:
        running.worker("worker")
        running.beat()
        running.wait_beating("worker", "beat")
        yield running


@pytest.fixture
def live(healthy: Stack) -> Stack:
    """The healthy stack with its worker and beat running (a test may have stopped beat)."""
    healthy.ensure("worker", "beat")
    return healthy


@pytest.fixture(scope="module")
def misconfigured(
    pg_template: str, redis_up: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Beat, and a worker of an app without late acks on every queue but ``sync_tasks``: two
    faults, each judged by a check of its own (the healthy stack passes both)."""
    with stack(pg_template, tmp_path_factory.mktemp("misconfigured")) as running:
        running.worker_without_acks_late("worker", [q for q in QUEUES if q != "sync_tasks"])
        running.beat()
        running.wait_beating("worker", "beat")
        yield running


@pytest.fixture(scope="module")
def idle(
    pg_template: str, redis_up: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A database and a key prefix, no process: for faults of the broker alone."""
    with stack(pg_template, tmp_path_factory.mktemp("idle")) as quiet:
        yield quiet


def _status(running: Stack, **env: str) -> tuple[int, list[str]]:
    """``pa status --json``: its exit code and its problems."""
    done = running.pa("status", "--json", **env)
    try:
        problems = list(json.loads(done.stdout)["problems"])
    except (json.JSONDecodeError, KeyError):
        raise AssertionError(f"pa status exited {done.returncode}: {done.stderr}") from None
    return done.returncode, problems


def _wait_gone(running: Stack, name: str) -> None:
    """A process that stopped cleanly deletes its heartbeat row."""
    worker_id = running.worker_id(name)
    wait_until(
        lambda: worker_id not in running.rows(),
        timeout=10,
        interval=0.1,
        message=f"{name}'s row {worker_id} to be deleted on a clean stop",
    )


# -- the healthy stack ----------------------------------------------------------------------


@dataclass(frozen=True)
class HealthyRun:
    """One ``pa doctor --canary --json --junit --markdown`` run on the healthy stack."""

    result: Doctor
    junit: Path
    markdown: Path


@pytest.fixture(scope="module")
def healthy_run(healthy: Stack, tmp_path_factory: pytest.TempPathFactory) -> HealthyRun:
    healthy.ensure("worker", "beat")
    folder = tmp_path_factory.mktemp("reports")
    junit, markdown = folder / "doctor.xml", folder / "doctor.md"
    result = healthy.doctor(
        "--canary", "--timeout", "30", "--junit", str(junit), "--markdown", str(markdown)
    )
    return HealthyRun(result, junit, markdown)


def test_a_healthy_stack_passes_every_check(healthy_run: HealthyRun) -> None:
    result = healthy_run.result
    assert result.not_passed() == {}
    assert result.code == 0
    assert result.check("workers.remote")["evidence"].startswith("1 worker(s) answered")


def test_the_canary_runs_end_to_end(healthy_run: HealthyRun, healthy: Stack) -> None:
    canary = healthy_run.result.check("canary.run")
    assert canary["verdict"] == "pass", canary
    assert set(canary["figures"]) >= {f"{stage}_ms" for stage in CANARY_STAGES}
    assert all(value >= 0 for value in canary["figures"].values()), canary["figures"]
    rows = healthy.db.scalar("SELECT count(*) FROM users WHERE display_name = 'pa doctor canary'")
    assert rows == 0  # doctor deleted its rows


def test_the_junit_and_markdown_reports_are_written(healthy_run: HealthyRun) -> None:
    suites = ET.parse(healthy_run.junit).getroot()
    assert suites.tag == "testsuites"
    cases = suites.findall(".//testcase")
    assert {c.get("name") for c in cases} == set(healthy_run.result.verdicts())
    assert not suites.findall(".//failure") and not suites.findall(".//skipped")
    text = healthy_run.markdown.read_text(encoding="utf-8")
    assert "Validation report" in text and "canary.run" in text


def test_status_is_healthy_with_a_worker_and_a_scheduler(live: Stack) -> None:
    assert _status(live) == (0, [])


# -- faults on the healthy stack ------------------------------------------------------------


def test_redis_down_fails_the_broker_check_and_status(live: Stack) -> None:
    down = dead_url("redis")
    port = down.split(":")[2].split("/")[0]
    result = live.doctor("--quick", REDIS_URL=down)
    reachable = result.check("broker.reachable")
    assert reachable["verdict"] == "fail"
    assert f"127.0.0.1:{port}" in reachable["evidence"] and "unreachable" in reachable["evidence"]
    assert result.code == 2
    code, problems = _status(live, REDIS_URL=down)
    assert code == 1
    [problem] = problems  # the worker and beat still beat: the broker is the one problem
    assert problem.startswith(f"the broker at redis://127.0.0.1:{port}/0 is unreachable")


def test_postgres_down_fails_the_database_check_and_still_reports(live: Stack) -> None:
    down = dead_url("postgresql")
    port = down.split(":")[2].split("/")[0]
    result = live.doctor("--quick", DATABASE_URL=down)
    reachable = result.check("database.reachable")
    assert reachable["verdict"] == "fail"
    assert f"127.0.0.1:{port}" in reachable["evidence"] and "unreachable" in reachable["evidence"]
    assert result.code == 2
    assert result.check("broker.reachable")["verdict"] == "pass"  # the rest is still checked
    assert result.check("workers")["verdict"] == "skip"


def test_a_stalled_worker_is_named_by_its_worker_id(live: Stack) -> None:
    worker_id = live.worker_id("worker")
    live.suspend("worker")
    try:
        wait_until(
            lambda: (live.silent_s("worker") or 0) > STALE_S + 0.5,
            timeout=15,
            interval=0.2,
            message=f"the stopped worker's row to be older than {STALE_S} s",
        )
        result = live.doctor("--quick")
    finally:
        live.resume("worker")
    stalled = result.check("workers.stalled")
    assert stalled["verdict"] in ("warn", "fail"), stalled
    assert f"worker {worker_id} silent for" in stalled["evidence"]
    assert result.code >= 1
    live.wait_beating("worker")  # continued, it beats again


def test_a_stopped_beat_fails_the_scheduler_check_and_status(live: Stack) -> None:
    live.stop("beat")
    _wait_gone(live, "beat")
    result = live.doctor("--quick")
    alive = result.check("scheduler.alive")
    assert alive["verdict"] == "fail"
    assert alive["evidence"].startswith("no scheduler has reported")
    assert result.code == 2
    code, problems = _status(live)
    assert code == 1
    [problem] = problems  # the worker still beats
    assert problem.startswith("no scheduler has reported")


# -- a misconfigured worker, then no worker -------------------------------------------------


@pytest.fixture(scope="module")
def misconfigured_run(misconfigured: Stack) -> Doctor:
    """One ``pa doctor --quick`` on the misconfigured stack, judged by two tests."""
    misconfigured.ensure("worker", "beat")
    return misconfigured.doctor("--quick")


def test_a_queue_without_a_consumer_is_named(misconfigured_run: Doctor) -> None:
    consumers = misconfigured_run.check("workers.consumers")
    assert consumers["verdict"] == "fail"
    assert consumers["evidence"].startswith("no live worker consumes sync_tasks (")
    assert "sync_tasks 0" in consumers["evidence"] and "ai_tasks 1" in consumers["evidence"]
    assert misconfigured_run.code == 2


def test_a_worker_without_late_acks_is_named(
    misconfigured_run: Doctor, misconfigured: Stack
) -> None:
    settings = misconfigured_run.check("workers.settings")
    assert settings["verdict"] == "fail"
    worker_id = misconfigured.worker_id("worker")
    assert settings["evidence"] == f"{worker_id} task_acks_late=False (needs True)"
    assert misconfigured_run.code == 2


def test_status_fails_with_no_worker(misconfigured: Stack) -> None:
    misconfigured.ensure("beat")
    misconfigured.stop("worker")
    _wait_gone(misconfigured, "worker")
    code, problems = _status(misconfigured)
    assert code == 1
    [problem] = problems  # beat still beats
    assert problem.startswith("no worker has reported")


# -- faults of the broker and the schema ----------------------------------------------------


def test_an_evicting_redis_is_named_by_its_policy(idle: Stack, tmp_path: Path) -> None:
    require(RedisServer.available(), "redis-server")
    with RedisServer(tmp_path / "redis", "--maxmemory-policy", "allkeys-lru") as server:
        result = idle.doctor("--quick", REDIS_URL=server.url)
    eviction = result.check("broker.eviction")
    assert eviction["verdict"] == "fail"
    assert eviction["evidence"].startswith("maxmemory-policy is allkeys-lru")
    assert result.check("broker.reachable")["verdict"] == "pass"
    assert result.code == 2


def test_a_database_one_migration_behind_names_both_revisions(idle: Stack) -> None:
    behind = previous_revision(HEAD)
    with database_at(behind) as url:
        result = idle.doctor("--quick", DATABASE_URL=url)
    migrations = result.check("database.migrations")
    assert migrations["verdict"] == "fail"
    assert migrations["evidence"] == f"the database is at {behind}, this code's head is {HEAD}"
    assert result.code == 2


def test_a_non_durable_rabbitmq_queue_is_named(idle: Stack) -> None:
    with rabbitmq.vhost("pa-doctor") as url:
        with Connection(url, connect_timeout=5) as conn:
            channel: Any = conn.default_channel
            channel.queue_declare(queue="sync_tasks", durable=False, auto_delete=False)
        result = idle.doctor("--quick", CELERY_BROKER_URL=url)
    queue = result.check("broker.queue.sync_tasks")
    assert queue["verdict"] == "fail"
    assert "durable" in queue["evidence"] and "sync_tasks" in queue["evidence"]
    assert result.check("broker.reachable")["verdict"] == "pass"
    assert result.code == 2
