"""Flower, Celery's web monitor, against a real worker on Redis (docs/howto-monitor.md).

Flower is started as a user starts it, ``celery -A personal_assistant.workers.celery_app
flower``, with task events on (``WORKER_SEND_TASK_EVENTS``) and on this test's own Redis key
prefix. Two defects made parts of it answer 404 and 503: Flower picks its broker client by the
scheme of the broker URL, which showed our transport's class path instead of ``redis``; and
``/api/task/result`` builds its ``AsyncResult`` without an app, so with the current app, which
ours was not. A run message showed ``[3 run ids]`` as its args; it now names its runs.
"""

from __future__ import annotations

import pickle
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.workers import redis_broker
from personal_assistant.workers.celery_app import PersonalAssistantCelery
from personal_assistant.workers.dispatch import ARGSREPR_MAX, describe_runs, publish_runs
from personal_assistant.workers.routing import QUEUES
from personal_assistant.workers.task_names import TaskName
from support.hook_server import free_port
from support.processes import CELERY_APP, ProcessGroup, wait_until
from support.services import REDIS_URL
from support.stack import Db, client_app, run, settings_for

pytestmark = pytest.mark.integration


class FlowerClient:
    """Flower's HTTP API, behind the basic authentication a deployment would use."""

    def __init__(self, port: int) -> None:
        self.user, self.password = "pa", secrets.token_urlsafe(12)
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", auth=(self.user, self.password), timeout=10
        )

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def up(self) -> bool:
        try:
            return self.get("/healthcheck").status_code == 200
        except httpx.TransportError:
            return False


@pytest.fixture
def flower(stack_env: dict[str, str], processes: ProcessGroup) -> Iterator[FlowerClient]:
    port = free_port()
    client = FlowerClient(port)
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        CELERY_APP,
        "flower",
        "--address=127.0.0.1",
        f"--port={port}",
        f"--basic_auth={client.user}:{client.password}",
        # Flower would switch the workers' events on itself: here only the setting does.
        "--enable_events=False",
        f"--db={processes.log_dir / 'flower.db'}",
    ]
    processes.start("flower", argv, stack_env)
    wait_until(client.up, timeout=15, message=f"Flower to answer\n{processes.log('flower')}")
    try:
        yield client
    finally:
        client.http.close()


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, "WORKER_SEND_TASK_EVENTS": "true"}


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    handle = Db(database_url)
    yield handle
    handle.close()


def _queued_runs(env: dict[str, str], count: int) -> list[int]:
    async def create() -> list[int]:
        async with AITaskManager(settings_for(env)) as manager:
            user = await manager.create_user("Flo")
            ids = []
            for i in range(count):
                task = await manager.create_task(
                    user.id, f"Look {i}", schedule={"kind": "daily", "times": ["03:00"]}
                )
                ids.append((await manager.run_now(task.id, user.id)).id)
            return ids

    return run(create())


def _lengths(flower: FlowerClient) -> dict[str, int]:
    queues = flower.json("/api/queues/length")["active_queues"]
    return {q["name"]: q["messages"] for q in queues}


def test_flower_reads_queues_workers_tasks_and_results(
    stack_env: dict[str, str],
    processes: ProcessGroup,
    flower: FlowerClient,
    db: Db,
    redis_prefix: str,
) -> None:
    settings = settings_for(stack_env)
    app = client_app(settings)
    run_ids = _queued_runs(stack_env, 3)
    # Before any worker: the message waits, under this test's key prefix, where Flower counts.
    assert publish_runs(app, run_ids, per_message=10) == 1
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.llen(f"{redis_prefix}ai_tasks") == 1
    finally:
        client.close()
    assert _lengths(flower) == {**dict.fromkeys(QUEUES, 0), "ai_tasks": 1}
    page = flower.get("/broker")
    assert page.status_code == 200, page.text
    assert all(queue in page.text for queue in QUEUES)
    assert re.search(r'class="[^"]*broker-url[^"]*">redis://', page.text), page.text

    processes.worker(stack_env)
    wait_until(
        lambda: (
            db.scalar("SELECT count(*) FROM task_runs WHERE state = 'succeeded'") == len(run_ids)
        ),
        timeout=30,
        message="the runs to succeed",
    )
    workers = wait_until(
        lambda: flower.json("/api/workers?refresh=1"), timeout=15, message="Flower to see a worker"
    )
    (info,) = workers.values()
    assert sorted(q["name"] for q in info["active_queues"]) == sorted(QUEUES)
    assert info["stats"]["broker"]["transport"] == "redis"
    # The queues the worker consumes, all drained (a notification message may pass through).
    wait_until(
        lambda: _lengths(flower) == dict.fromkeys(QUEUES, 0), timeout=15, message="empty queues"
    )

    # With task events on, Flower shows each run message and the runs it carried.
    def run_message() -> dict[str, Any] | None:
        tasks = flower.json(f"/api/tasks?taskname={TaskName.EXECUTE_AI_TASK}")
        done = [t for t in tasks.values() if t["state"] == "SUCCESS"]
        return done[0] if done else None

    message = wait_until(run_message, timeout=15, message="Flower to show the run message")
    assert message["args"] == "runs " + ", ".join(map(str, run_ids))
    assert message["worker"] in workers
    assert message["sent"]  # the publisher's event: the setting turns it on where runs are sent

    # A task whose result is kept: Flower reads it from the result backend.
    reaper = app.send_task(TaskName.REAP_EXPIRED_RUNS)
    result = wait_until(
        lambda: (r := flower.json(f"/api/task/result/{reaper.id}"))["state"] == "SUCCESS" and r,
        timeout=15,
        message="the reaper's result",
    )
    assert result["task-id"] == reaper.id
    assert set(result["result"]) == {"reaped", "resent", "notifications_resent"}


@pytest.mark.parametrize(("run_ids", "shown"), [([7], "runs 7"), ([12, 13, 14], "runs 12, 13, 14")])
def test_a_run_message_shows_its_run_ids(run_ids: list[int], shown: str) -> None:
    assert describe_runs(run_ids) == shown


def test_a_long_list_of_run_ids_is_cut_after_a_whole_id() -> None:
    run_ids = list(range(10**6, 10**6 + 1000))
    shown = describe_runs(run_ids)
    assert len(shown) <= ARGSREPR_MAX  # Celery's own bound on a printable ``args``
    head, tail = shown.removeprefix("runs ").split(", ... ")
    assert tail == "(1000 runs)"
    ids = [int(i) for i in head.split(", ")]
    assert ids == run_ids[: len(ids)] and len(ids) > 100


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("redis://127.0.0.1:6379/3", "redis"), ("rediss://127.0.0.1:6380/3", "rediss")],
)
def test_the_app_shows_its_redis_transport_as_redis_and_keeps_using_it(
    url: str, scheme: str, tmp_path: Path
) -> None:
    app = PersonalAssistantCelery("flower-check", task_modules=())
    app.use_settings(settings_for({"REDIS_URL": url, "PA_HOME": str(tmp_path)}))
    conn = app.connection_for_write()  # not connected: nothing here talks to Redis
    assert conn.as_uri() == f"{scheme}://:**@127.0.0.1:{url.split(':')[2]}"
    assert conn.info()["transport"] == scheme
    for copy in (conn.clone(), pickle.loads(pickle.dumps(conn))):
        assert type(copy.transport) is redis_broker.Transport
        assert copy.as_uri() == conn.as_uri()
