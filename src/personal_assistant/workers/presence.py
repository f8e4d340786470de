"""A worker says what it is, from the moment it is ready until it shuts down.

When a worker's consumer is ready, its main process starts beating (the heartbeat of
:mod:`~personal_assistant.health.heartbeat`, which renews its runs' leases too) with a
:class:`~personal_assistant.health.heartbeat.Presence`: the queues it consumes, the package
version, and the Celery settings that delivery depends on, as the running process has them.
On a clean shutdown it deletes its row. Before this, a worker beat only once it had claimed a
run, so an idle worker, or one consuming only ``sync_tasks``, was invisible to ``pa status``.

The handlers are connected when the worker imports its task modules (``workers/tasks``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery import Celery, signals

from personal_assistant import __version__
from personal_assistant.core.states import ProcessRole
from personal_assistant.health.heartbeat import Heartbeat, Presence
from personal_assistant.workers.runtime import runtime

log = logging.getLogger(__name__)

#: Celery settings ``pa doctor`` compares across workers and with what delivery requires.
DELIVERY_SETTINGS = (
    "task_acks_late",
    "task_reject_on_worker_lost",
    "task_acks_on_failure_or_timeout",
    "worker_prefetch_multiplier",
    "task_serializer",
    "accept_content",
    "worker_pool",
    "worker_concurrency",
)

#: Celery's pool modules by the names WORKER_POOL and ``-P`` use.
POOL_NAMES = {"thread": "threads"}


def _plain(value: Any) -> Any:
    """A setting as JSON can hold it (tuples and sets become sorted lists)."""
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(str(item) for item in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def worker_presence(app: Celery, queues: Iterable[str], pool: str | None = None) -> Presence:
    """What a worker of ``app`` consuming ``queues`` is; ``pool``: the pool it really runs."""
    config = {name: _plain(app.conf.get(name)) for name in DELIVERY_SETTINGS}
    if pool:
        config["worker_pool"] = pool
    return Presence(ProcessRole.WORKER, tuple(sorted(set(queues))), __version__, config)


def scheduler_presence() -> Presence:
    return Presence(ProcessRole.SCHEDULER, (), __version__, {})


def _heartbeat(app: Celery) -> Heartbeat | None:
    settings = getattr(app, "pa_settings", None)  # our app; a foreign one does not beat
    if settings is None:
        return None
    return runtime.services(settings).processor.heartbeat


async def _start(heartbeat: Heartbeat) -> None:
    heartbeat.ensure_started()  # on the runtime's loop: the beat watches that loop


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **_: Any) -> None:
    """The consumer is ready: beat with what this worker is (``sender``: the consumer)."""
    try:
        heartbeat = _heartbeat(sender.app)
        if heartbeat is None:
            return
        queues = [queue.name for queue in sender.task_consumer.queues]
        pool = getattr(getattr(sender, "controller", None), "pool_cls", None)
        module = getattr(pool, "__module__", "").rsplit(".", 1)[-1]
        pool_name = POOL_NAMES.get(module, module) or None
        heartbeat.presence = worker_presence(sender.app, queues, pool=pool_name)
        runtime.run(_start(heartbeat), timeout=30)
    except Exception:  # the database is away: the runs' heartbeat starts with the first run
        log.warning("event=presence_not_started", exc_info=True)


@signals.worker_shutdown.connect
def _worker_shutdown(sender: Any = None, **_: Any) -> None:
    """Stop beating and delete this process's row: a silent row then means a dead worker
    (``sender``: the worker)."""
    app = getattr(sender, "app", None)
    try:
        heartbeat = _heartbeat(app) if app is not None else None
        if heartbeat is not None and heartbeat.presence is not None:
            runtime.run(heartbeat.stop(leave_row=True), timeout=15)
    except Exception:
        log.warning("event=presence_not_left", exc_info=True)
