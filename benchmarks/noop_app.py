"""A bare Celery app with one no-op task, configured exactly like the project's app.

The baseline of the end-to-end figure: the same ``celery_config(settings)`` (broker, Redis
result backend, prefetch 1, ``acks_late``, the threads pool and its concurrency, queues), only
the task does nothing and no project task module is included. The worker runs it with
``celery -A benchmarks.noop_app worker -Q ai_tasks``; settings are read from the environment
when Celery first needs them (or given with :meth:`NoopCelery.use_settings`), never at import.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery

from personal_assistant.config import Settings
from personal_assistant.workers.celery_app import celery_config

NOOP = "benchmarks.noop_app.noop"
QUEUE = "ai_tasks"  # the config's default queue: the noop task has no route


class _Config(Mapping[str, Any]):
    def __init__(self, owner: NoopCelery) -> None:
        self._owner = owner
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            data = celery_config(self._owner.settings)
            data["include"] = []
            self._data = data
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class NoopCelery(Celery):
    def __init__(self) -> None:
        super().__init__("bench_noop", set_as_current=False)
        self._settings: Settings | None = None
        self.config_from_object(_Config(self))

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    def use_settings(self, settings: Settings) -> None:
        if self.configured:  # type: ignore[attr-defined]  # missing from celery-types
            raise RuntimeError("the Celery app is already configured")
        self._settings = settings


app = NoopCelery()


@app.task(name=NOOP, shared=False)
def noop() -> None:
    """Does nothing: what is measured is Celery's own cost per task."""
    return None
