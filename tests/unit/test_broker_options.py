"""The Celery settings each broker gets: publisher confirms and quorum queues on RabbitMQ only.

Redis and the embedded broker keep exactly the settings they had; ``BROKER_QUORUM_QUEUES`` is
refused, naming it, on any broker but RabbitMQ (it would silently change nothing there).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery
from celery.utils.quorum_queues import detect_quorum_queues
from kombu import Queue

from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError
from personal_assistant.workers.broker_options import (
    QUORUM_DELIVERY_LIMIT,
    broker_options,
    is_amqp,
    queue_arguments,
)
from personal_assistant.workers.celery_app import celery_config
from personal_assistant.workers.routing import QUEUES

AMQP = "amqp://guest:s3cret@rabbit.example:5672/pa"
QUORUM = {"x-queue-type": "quorum", "x-delivery-limit": QUORUM_DELIVERY_LIMIT}


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings(PA_HOME=str(tmp_path), **env)  # type: ignore[arg-type]  # aliases


def _queues(conf: dict[str, object]) -> list[Queue]:
    queues = conf["task_queues"]
    assert isinstance(queues, list)
    return queues


@pytest.mark.parametrize(
    ("url", "amqp"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", True),
        ("AMQP://host/vhost", True),
        ("amqps://user:pw@rabbit.example:5671/pa", True),
        ("pyamqp://host//", True),
        ("redis://127.0.0.1:6379/0", False),
        ("rediss://:pw@cache:6380/0", False),
        ("sqla+sqlite:////tmp/broker.db", False),
        ("librabbitmq://host//", False),  # kombu's C client: not installed, not supported
    ],
)
def test_which_urls_are_rabbitmq(url: str, amqp: bool) -> None:
    assert is_amqp(url) is amqp


@pytest.mark.parametrize(
    "env",
    [
        {},  # the embedded default
        {"REDIS_URL": "redis://127.0.0.1:6379/0"},
        {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/1", "REDIS_URL": "redis://h:6379/0"},
    ],
    ids=["embedded", "redis", "redis-broker-url"],
)
def test_redis_and_embedded_get_nothing(tmp_path: Path, env: dict[str, str]) -> None:
    settings = _settings(tmp_path, **env)
    assert broker_options(settings) == {}
    assert queue_arguments(settings) is None
    conf = celery_config(settings)
    assert "confirm_publish" not in conf["broker_transport_options"]
    assert all(q.queue_arguments is None for q in _queues(conf))


def test_rabbitmq_confirms_every_publish_on_classic_queues(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CELERY_BROKER_URL=AMQP)
    assert broker_options(settings) == {"broker_transport_options": {"confirm_publish": True}}
    assert queue_arguments(settings) is None  # classic queues, declared as before
    conf = celery_config(settings)
    assert conf["broker_transport_options"] == {"confirm_publish": True}
    assert all(q.queue_arguments is None and q.durable for q in _queues(conf))
    assert "worker_detect_quorum_queues" not in conf

    app = Celery("confirm-check", set_as_current=False)
    app.conf.update(conf)
    with app.connection_for_write() as conn:  # kombu connects lazily: nothing is reached
        assert conn.transport.driver_type == "amqp"
        assert conn.transport_options == {"confirm_publish": True}
        assert "s3cret" not in conn.as_uri()


@pytest.mark.parametrize("flag", ["true", "1", "yes"])
def test_quorum_queues_on_rabbitmq(tmp_path: Path, flag: str) -> None:
    settings = _settings(tmp_path, CELERY_BROKER_URL=AMQP, BROKER_QUORUM_QUEUES=flag)
    assert queue_arguments(settings) == QUORUM
    conf = celery_config(settings)
    assert conf["broker_transport_options"] == {"confirm_publish": True}
    assert conf["worker_detect_quorum_queues"] is True  # per-consumer prefetch, no global QoS
    assert conf["task_default_queue_type"] == conf["task_create_missing_queue_type"] == "quorum"
    queues = _queues(conf)
    assert [q.name for q in queues] == list(QUEUES)
    for queue in queues:
        assert queue.queue_arguments == QUORUM  # no x-max-priority: none before RabbitMQ 4.0
        # What RabbitMQ requires of a quorum queue.
        assert queue.durable and not queue.auto_delete and not queue.exclusive

    app = Celery("quorum-check", set_as_current=False)
    app.conf.update(conf)
    assert detect_quorum_queues(app, "amqp") == (True, "ai_tasks")  # what the worker asks


@pytest.mark.parametrize(
    ("env", "found"),
    [
        ({}, "sqla+sqlite://"),
        ({"REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0"}, "redis://"),
        ({"CELERY_BROKER_URL": "rediss://:s3cret@cache:6380/0"}, "rediss://"),
    ],
    ids=["embedded", "redis", "rediss"],
)
def test_quorum_queues_are_refused_on_another_broker(
    tmp_path: Path, env: dict[str, str], found: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        _settings(tmp_path, BROKER_QUORUM_QUEUES="true", **env)
    assert err.value.field == "BROKER_QUORUM_QUEUES"
    assert "amqp://" in err.value.message and f"(it is {found})" in err.value.message
    assert "s3cret" not in str(err.value)


def test_quorum_queues_off_is_fine_anywhere(tmp_path: Path) -> None:
    settings = _settings(tmp_path, BROKER_QUORUM_QUEUES="false")
    assert settings.broker_quorum_queues is False
    assert queue_arguments(settings) is None


def test_from_env_refuses_quorum_queues_on_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("BROKER_QUORUM_QUEUES", "true")
    with pytest.raises(ConfigurationError, match=r"^BROKER_QUORUM_QUEUES: needs a RabbitMQ"):
        Settings.from_env()
