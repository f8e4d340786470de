"""The Celery application, ``app``.

Importing this module builds the app object and nothing else: settings are read when the app
is first configured (by a worker, beat, or the first message sent), through
``app.loader``'s ``on_configure`` hook, never at import.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    before_task_publish,
    import_modules,
)
from kombu import Exchange, Queue

from personal_assistant import logsetup
from personal_assistant.config import Settings
from personal_assistant.database.engine import prepare_sqlite_file
from personal_assistant.workers import broker_connection
from personal_assistant.workers.broker_options import broker_options, queue_arguments
from personal_assistant.workers.routing import QUEUES, ROUTES
from personal_assistant.workers.task_names import TASK_MODULES

EMBEDDED_TRANSPORT = "personal_assistant.workers.embedded_broker:Transport"
REDIS_TRANSPORT = "personal_assistant.workers.redis_broker:Transport"
CONSUMER = "personal_assistant.workers.inbound:Consumer"
#: A header on every message published from this package's processes: when it was sent
#: (seconds since the epoch), so that ``pa doctor`` can say how long a queue's oldest message
#: has waited (Celery's messages carry no time of their own).
SENT_AT_HEADER = "pa_sent_at"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from ours (pure: tests call it directly)."""
    transport_options: dict[str, Any] = {}
    result_transport_options: dict[str, Any] = {}
    broker: dict[str, Any] = {"broker_url": settings.broker_url}
    if settings.broker_is_redis:
        # kombu's Redis transport, but a lost connection cannot make a worker exit.
        broker["broker_transport"] = REDIS_TRANSPORT
        transport_options["visibility_timeout"] = settings.visibility_timeout_seconds
        if settings.redis_key_prefix:
            transport_options["global_keyprefix"] = settings.redis_key_prefix
    elif settings.broker_url.startswith("sqla+sqlite"):
        prepare_sqlite_file(settings.broker_url.removeprefix("sqla+"))  # 0600, see there
        transport_options["connect_args"] = {"timeout": 30}
        broker = {
            "broker_url": settings.broker_url.removeprefix("sqla+"),
            "broker_transport": EMBEDDED_TRANSPORT,
        }
    if settings.result_backend.startswith(("redis://", "rediss://")):
        result_transport_options["visibility_timeout"] = settings.visibility_timeout_seconds
        if settings.redis_key_prefix:
            result_transport_options["global_keyprefix"] = settings.redis_key_prefix
    elif settings.result_backend.startswith("db+sqlite"):
        prepare_sqlite_file(settings.result_backend.removeprefix("db+"))

    tls = _tls_settings(settings)
    exchange = Exchange("personal_assistant", type="direct")
    return {
        **broker,
        **tls,
        "result_backend": settings.result_backend,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": result_transport_options,
        "broker_connection_retry_on_startup": True,
        # A worker tries a lost broker every 2 s for as long as it is away (broker_connection).
        "broker_connection_max_retries": None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "result_expires": 3600,
        "task_queues": [
            Queue(q, exchange, routing_key=q, queue_arguments=queue_arguments(settings))
            for q in QUEUES
        ],
        "task_default_queue": "ai_tasks",
        "task_default_exchange": exchange.name,
        "task_default_routing_key": "ai_tasks",
        "task_routes": dict(ROUTES),
        "task_create_missing_queues": False,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        # Agent calls are bounded by RUN_TIMEOUT on the worker's event loop (the threads pool
        # does not enforce Celery time limits); this limit applies to prefork workers
        # (`-P prefork`) and stays well below the broker's visibility timeout.
        "task_time_limit": int(settings.run_timeout_seconds) + 30,
        # Celery prefers this over the command line's -P when -P is its default (prefork).
        "worker_pool": settings.worker_pool,
        "worker_concurrency": settings.worker_concurrency,
        "worker_hijack_root_logger": False,
        # Refuses, logs without content and rejects a message Celery cannot read, where
        # Celery's own consumer could exit on it (workers/inbound.py).
        "worker_consumer": CONSUMER,
        "worker_send_task_events": settings.worker_send_task_events,
        "task_send_sent_event": settings.worker_send_task_events,
        "beat_scheduler": "personal_assistant.workers.schedulers.beat:DatabaseScheduler",
        "beat_max_loop_interval": max(1.0, settings.tick_seconds),
        "timezone": "UTC",
        "enable_utc": True,
        **broker_options(settings),
    }


def _tls_settings(settings: Settings) -> dict[str, Any]:
    """``rediss://`` URLs: verify the server's certificate unless the URL says otherwise.

    Celery refuses a ``rediss://`` result backend URL without ``ssl_cert_reqs``; a URL may
    carry its own (``?ssl_cert_reqs=CERT_NONE``), else certificates are required.
    """
    required = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    tls: dict[str, Any] = {}
    if settings.broker_url.startswith("rediss://") and "ssl_cert_reqs" not in settings.broker_url:
        tls["broker_use_ssl"] = required
    backend = settings.result_backend
    if backend.startswith("rediss://") and "ssl_cert_reqs" not in backend:
        tls["redis_backend_use_ssl"] = required
    return tls


class _LazyConfig(Mapping[str, Any]):
    """Celery's configuration source, computed from :class:`Settings` on first read."""

    def __init__(self, owner: PersonalAssistantCelery) -> None:
        self._owner = owner
        self._data: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {
                **celery_config(self._owner.pa_settings),
                "include": list(self._owner.task_modules),
            }
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


class Messaging(AMQP):
    """Celery's messaging, whose connections try a lost broker again every 2 s at most and show
    our Redis transport as ``redis://`` (:mod:`.broker_connection` says why)."""

    Connection = broker_connection.Connection
    BrokerConnection = broker_connection.Connection  # Celery's older name


class PersonalAssistantCelery(Celery):
    """The Celery app; reads :class:`Settings` only when Celery first needs its configuration."""

    amqp_cls = f"{__name__}:Messaging"

    def __init__(
        self, main: str = "personal_assistant", task_modules: Sequence[str] = TASK_MODULES
    ) -> None:
        super().__init__(main, include=list(task_modules), set_as_current=False)
        self.task_modules = tuple(task_modules)
        self._pa_settings: Settings | None = None
        self.config_from_object(_LazyConfig(self))

    @property
    def pa_settings(self) -> Settings:
        if self._pa_settings is None:
            self._pa_settings = Settings.from_env()
        return self._pa_settings

    def use_settings(self, settings: Settings) -> None:
        """Configure from explicit settings (the CLI and tests); call before first use."""
        if self.configured:  # type: ignore[attr-defined]  # set by Celery, not in the stubs
            raise RuntimeError("the Celery app is already configured")
        self._pa_settings = settings


app = PersonalAssistantCelery()


@after_setup_logger.connect
def _add_core_log(logger: logging.Logger, **_: Any) -> None:
    """Workers and beat started by ``celery`` also write our events to ``logs/core.log``.

    Every handler of the root logger, Celery's own included, redacts secrets from then on.
    """
    logsetup.add_core_log(app.pa_settings, logger)


@import_modules.connect
def _run_as_current_app(sender: object = None, **_: Any) -> None:
    """A program that loads its tasks through our app (a worker, beat, Flower) runs as that app.

    The app is created with ``set_as_current=False``: importing this module changes no global.
    Celery's worker and beat then make their app the current and the default one; Flower does
    not, and reads task results through the current app (``/api/task/result`` answered 503,
    "result backend is not configured", from Celery's empty default app). Importing the task
    modules is what all of them do first, Celery's ``shell`` and ``report`` too.
    """
    if isinstance(sender, PersonalAssistantCelery):
        sender.set_current()
        sender.set_default()


@before_task_publish.connect
def _stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Stamp :data:`SENT_AT_HEADER` on each message as it is published."""
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, round(time.time(), 3))


@after_setup_task_logger.connect
def _protect_task_logger(logger: logging.Logger, **_: Any) -> None:
    """``celery.task`` has a handler of its own (it does not propagate): it redacts too."""
    logsetup.protect(logger)
