"""Shared fixtures: real PostgreSQL databases cloned from a migrated template, a Redis key
prefix per test, and real worker / beat processes.

A test that needs a service skips when it is absent, but fails when ``CI`` is set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from personal_assistant.metrics import instruments
from support.keys import CHANNEL_KEY
from support.processes import ProcessGroup
from support.services import (
    PG_ADMIN_URL,
    REDIS_URL,
    create_database_from_template,
    create_template,
    delete_redis_prefix,
    drop_database,
    pg_available,
    redis_available,
    require,
)
from support.stack import Db


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    require(pg_available(), f"PostgreSQL ({PG_ADMIN_URL})")
    name = f"pa_tmpl_{uuid.uuid4().hex[:10]}"
    create_template(name)
    yield name
    drop_database(name)


@pytest.fixture
def database_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of this test's own."""
    name = f"pa_t_{uuid.uuid4().hex[:12]}"
    url = create_database_from_template(name, pg_template)
    yield url
    drop_database(name)


@pytest.fixture
def db(database_url: str) -> Iterator[Db]:
    """Plain SQL on this test's PostgreSQL database (a file may define its own ``db``)."""
    handle = Db(database_url)
    yield handle
    handle.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from personal_assistant.database import migrate

    url = f"sqlite:///{tmp_path / 'pa.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; only its keys are deleted afterwards."""
    require(redis_available(), f"Redis ({REDIS_URL})")
    prefix = f"pa-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    delete_redis_prefix(prefix)


@pytest.fixture
def stack_env(database_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for processes on the real stack, with timings shortened for tests."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "PA_HOME": str(tmp_path),
        "CHANNEL_KEYS": CHANNEL_KEY,
        # The test servers (feeds, webhooks, SMTP) listen on loopback, refused by default.
        "OUTBOUND_ALLOW": "127.0.0.0/8",
        "SCHEDULER_TICK_SECONDS": "0.2",
        "DISPATCH_LEASE": "3",
        "REAPER_INTERVAL": "1",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "0.5",
        "RUN_TIMEOUT": "10",
    }


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path / "logs")
    yield group
    group.stop_all()


@pytest.fixture
def metrics_enabled() -> Iterator[instruments.Instruments]:
    """This process's Prometheus metrics, on for the test and off again after it."""
    instruments.disable()
    yield instruments.enable()
    instruments.disable()
