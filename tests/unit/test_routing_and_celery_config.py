from __future__ import annotations

from kombu import Queue

from personal_assistant.config import Settings
from personal_assistant.workers.celery_app import celery_config
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
