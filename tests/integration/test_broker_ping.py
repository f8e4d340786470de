"""``pa status`` asks whether the broker answers, without Celery: Redis, RabbitMQ and the
embedded broker's file, answering and away (an error on one line, its password masked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from personal_assistant.config import Settings
from personal_assistant.workers.broker_ping import broker_error, broker_kind
from support import rabbitmq
from support.services import REDIS_URL, redis_available, require

pytestmark = pytest.mark.integration


def _settings(broker: str, tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        DATABASE_URL=f"sqlite:///{tmp_path / 'pa.db'}", CELERY_BROKER_URL=broker
    )


def test_redis_answers(tmp_path: Path) -> None:
    require(redis_available(), f"Redis ({REDIS_URL})")
    settings = _settings(REDIS_URL, tmp_path)
    assert broker_kind(settings) == "redis"
    assert broker_error(settings) is None


def test_rabbitmq_answers(tmp_path: Path) -> None:
    rabbitmq.require()
    settings = _settings(rabbitmq.url_for("/"), tmp_path)
    assert broker_kind(settings) == "amqp"
    assert broker_error(settings) is None


@pytest.mark.parametrize(
    "broker", ["redis://:hunter2@127.0.0.1:1/0", "amqp://guest:hunter2@127.0.0.1:1//"]
)
def test_a_broker_that_is_away_is_told_on_one_line_without_its_password(
    broker: str, tmp_path: Path
) -> None:
    error = broker_error(_settings(broker, tmp_path))
    assert error is not None
    assert "refused" in error.lower()
    assert "hunter2" not in error and "\n" not in error


def test_rabbitmq_refusing_the_password_is_told(tmp_path: Path) -> None:
    rabbitmq.require()
    error = broker_error(_settings(rabbitmq.url_for("/").replace("guest@", "wrong@"), tmp_path))
    assert error is not None and "ACCESS_REFUSED" in error
    assert "wrong@" not in error


def test_the_embedded_brokers_file_answers_made_or_not(tmp_path: Path) -> None:
    file = tmp_path / "broker.db"
    settings = _settings(f"sqla+sqlite:///{file}", tmp_path)
    assert broker_kind(settings) == "embedded"
    assert broker_error(settings) is None  # not made yet: its first user makes it
    assert not file.exists()
    file.write_bytes(b"")
    assert broker_error(settings) is None


def test_the_embedded_broker_is_away_when_its_file_cannot_be_opened(tmp_path: Path) -> None:
    gone = _settings(f"sqla+sqlite:///{tmp_path / 'no' / 'broker.db'}", tmp_path)
    assert "no directory" in (broker_error(gone) or "")
    (tmp_path / "junk.db").write_bytes(b"not a database at all, not at all" * 100)
    junk = _settings(f"sqla+sqlite:///{tmp_path / 'junk.db'}", tmp_path)
    assert "file is not a database" in (broker_error(junk) or "")
