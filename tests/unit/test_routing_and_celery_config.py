from __future__ import annotations

import socket

import pytest
from kombu import Queue

from personal_assistant.config import Settings
from personal_assistant.workers.celery_app import (
    REDIS_TRANSPORT,
    PersonalAssistantCelery,
    celery_config,
)
from personal_assistant.workers.routing import QUEUES, ROUTES, routed_queues, worker_queues


def test_every_route_goes_to_a_declared_queue() -> None:
    assert set(ROUTES.values()) <= set(QUEUES)
    assert set(routed_queues()) <= set(worker_queues().split(","))


def test_contract_queues_are_declared() -> None:
    assert QUEUES == ("ai_tasks", "email_tasks", "file_tasks", "sync_tasks", "maintenance_tasks")


def test_celery_settings_follow_the_field_notes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        REDIS_URL="redis://:pw@127.0.0.1:6379/0", REDIS_KEY_PREFIX="t:", PA_HOME=str(tmp_path)
    )  # type: ignore[call-arg]
    conf = celery_config(settings)
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_create_missing_queues"] is False
    assert {q.name for q in conf["task_queues"] if isinstance(q, Queue)} == set(QUEUES)
    visibility = conf["broker_transport_options"]["visibility_timeout"]
    assert conf["task_time_limit"] < visibility
    assert conf["broker_transport_options"]["global_keyprefix"] == "t:"
    assert conf["task_routes"] == dict(ROUTES)
    assert "priority_steps" not in conf["broker_transport_options"]
    assert conf["broker_connection_max_retries"] is None  # a worker never gives up the broker


def test_a_lost_broker_is_tried_again_every_2_s_at_most(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The wait between tries grows 1 s, 2 s and stays there (kombu's own grows to 30 s)."""
    with socket.socket() as probe:  # a port nothing listens on: each try is refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = PersonalAssistantCelery("reconnect-check", task_modules=())
    app.use_settings(
        Settings(REDIS_URL=f"redis://127.0.0.1:{port}/0", PA_HOME=str(tmp_path))  # type: ignore[call-arg]
    )
    waits: list[float] = []

    def tried(exc: Exception, interval: float) -> None:  # Celery's consumer logs here
        waits.append(interval)
        if len(waits) == 3:
            raise StopAsking

    with app.connection_for_read() as conn, pytest.raises(StopAsking):
        conn.ensure_connection(tried, None)  # as Celery's consumer calls it
    assert waits == [1.0, 2.0, 2.0]


class StopAsking(Exception):
    pass


def test_rediss_urls_with_a_password_build_broker_and_backend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl

    from celery import Celery

    settings = Settings(
        REDIS_URL="rediss://:s3cret@cache.example:6380/0",  # type: ignore[call-arg]
        PA_HOME=str(tmp_path),
    )
    conf = celery_config(settings)
    assert conf["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert conf["redis_backend_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    app = Celery("tls-check", set_as_current=False)
    app.conf.update(conf)
    backend = app.backend  # refuses a rediss:// URL without ssl settings; connects lazily
    assert backend.connparams["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert "s3cret" not in repr(backend) and "s3cret" not in app.conf.humanize(with_defaults=False)
    with app.connection_for_write() as conn:
        assert conn.transport_cls == REDIS_TRANSPORT  # kombu's Redis transport, subclassed
        assert conn.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}  # TLS, as rediss:// says
        assert "s3cret" not in conn.as_uri()


def test_rediss_url_may_choose_its_own_verification(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = "rediss://cache.example:6380/0?ssl_cert_reqs=CERT_NONE"
    conf = celery_config(Settings(REDIS_URL=url, PA_HOME=str(tmp_path)))  # type: ignore[call-arg]
    assert "broker_use_ssl" not in conf and "redis_backend_use_ssl" not in conf


def test_the_worker_pool_is_a_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pydantic
    import pytest

    assert celery_config(Settings(PA_HOME=str(tmp_path)))["worker_pool"] == "threads"  # type: ignore[call-arg]
    chosen = Settings(PA_HOME=str(tmp_path), WORKER_POOL="prefork")  # type: ignore[call-arg]
    assert celery_config(chosen)["worker_pool"] == "prefork"
    with pytest.raises(pydantic.ValidationError, match="WORKER_POOL"):
        Settings(PA_HOME=str(tmp_path), WORKER_POOL="gevent")  # type: ignore[call-arg]


def test_the_queue_reference_is_derived_from_the_routing_table() -> None:
    from pathlib import Path

    from personal_assistant.workers import routing, routing_docs

    page = (Path(__file__).parents[2] / routing_docs.PAGE).read_text()
    assert routing_docs.block(page) == routing.markdown_table(), "run `make docs`"
    for route in routing.TABLE:
        assert route.task.removeprefix("personal_assistant.workers.tasks.") in page
    assert routing_docs.render(page) == page


def test_celery_result_cleanup_goes_to_maintenance() -> None:
    assert ROUTES["celery.backend_cleanup"] == "maintenance_tasks"


def test_every_beat_entry_is_a_routed_task(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from personal_assistant.workers.schedulers.beat import beat_entries

    entries = beat_entries(Settings(PA_HOME=str(tmp_path), REAPER_INTERVAL="7"))  # type: ignore[call-arg]
    assert {e["task"] for e in entries.values()} <= set(ROUTES)
    assert all(e["options"]["queue"] == ROUTES[e["task"]] for e in entries.values())
    assert entries["reap-expired-runs"]["schedule"].total_seconds() == 7


def test_every_task_name_is_routed_to_the_queue_its_module_is_named_for() -> None:
    from personal_assistant.workers.task_names import PACKAGE, TASK_MODULES, TaskName

    for name in TaskName:
        assert name.startswith(f"{PACKAGE}.") and name.module in TASK_MODULES
        assert ROUTES[name] == name.module.removeprefix(f"{PACKAGE}.")
    assert (
        str(TaskName.EXECUTE_AI_TASK) == "personal_assistant.workers.tasks.ai_tasks.execute_ai_task"
    )
    assert len(TASK_MODULES) == len(QUEUES)


def test_every_published_message_carries_when_it_was_sent() -> None:
    """``pa doctor`` reads a queue's oldest message age from this header (Redis)."""
    import time

    from celery import Celery

    from personal_assistant.workers.celery_app import SENT_AT_HEADER

    app = Celery("pa-test-stamp", broker="memory://", set_as_current=False)
    before = time.time()
    with app.connection_for_write() as conn:
        app.send_task("pa-test-stamp.noop", args=[1], connection=conn)
        queue = conn.SimpleQueue("celery")
        try:
            message = queue.get(timeout=5)
            message.ack()
        finally:
            queue.close()
    assert before - 0.01 <= message.headers[SENT_AT_HEADER] <= time.time()
