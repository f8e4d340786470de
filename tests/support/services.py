"""Access to the real PostgreSQL and Redis for tests (admin operations only)."""

from __future__ import annotations

import os

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require(available: bool, what: str) -> None:
    """Skip the test when ``what`` is absent here; fail it when ``CI`` is set (the suite needs
    it)."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not reachable, and CI is set: the suite needs it")
    pytest.skip(f"{what} is not reachable")


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def redis_available() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def database_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]  # names are generated, not user input


def create_template(name: str) -> str:
    from personal_assistant.database import migrate

    _admin(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    migrate.upgrade(url)
    return url


def create_database_from_template(name: str, template: str) -> str:
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return database_url(name)


def drop_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_redis_prefix(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()
