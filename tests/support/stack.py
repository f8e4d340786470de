"""In-test access to the stack under test: settings, a client Celery app, the manager."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy import create_engine, text

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_sync_engine
from personal_assistant.workers.celery_app import celery_config
from personal_assistant.workers.task_names import TaskName

T = TypeVar("T")


def settings_for(env: dict[str, str]) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]  # aliases are the init names


def client_app(settings: Settings) -> Celery:
    """A Celery app that sends to the stack under test (the global app stays untouched)."""
    app = Celery("pa-test-client", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def send_runs(app: Celery, run_ids: Sequence[int]) -> None:
    app.send_task(TaskName.EXECUTE_AI_TASK, args=[list(run_ids)])


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Db:
    """Plain SQL reads for assertions."""

    def __init__(self, url: str) -> None:
        self.engine = make_sync_engine(url)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def execute(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params)

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["Db", "client_app", "create_engine", "run", "send_runs", "settings_for"]
