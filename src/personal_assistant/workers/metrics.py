"""A worker's ``/metrics``: started before its pool, stopped when it shuts down.

With ``METRICS_PORT`` set, the worker's main process turns metrics on in multiprocess mode
before Celery starts its pool (``worker_init``), so that prefork children inherit it and count
into the directory the main process serves; a child's end drops its live gauges. The handlers
are connected when the worker imports its task modules (``workers/tasks``), as presence's are.
The scheduler (beat) serves its own: :class:`~.schedulers.beat.DatabaseScheduler`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from personal_assistant.config import Settings
from personal_assistant.metrics import exposition, record
from personal_assistant.metrics.exposition import Served

log = logging.getLogger(__name__)

_served: Served | None = None


def serve(settings: Settings, *, multiprocess: bool) -> Served | None:
    """Serve this process's metrics when ``METRICS_PORT`` is set (once per process)."""
    global _served
    if settings.metrics_port == 0 or _served is not None:
        return _served
    if multiprocess:
        _served = exposition.serve_worker(settings.metrics_port, settings.metrics_bind)
        if _served is not None:
            record.in_flight_limit(settings.max_in_flight)  # a worker's cap on its runs
    else:
        _served = exposition.serve_process(settings.metrics_port, settings.metrics_bind)
    return _served


def stop() -> None:
    global _served
    if _served is not None:
        _served.close()
        _served = None


@signals.worker_init.connect
def _worker_init(sender: Any = None, **_: Any) -> None:
    settings = getattr(getattr(sender, "app", None), "pa_settings", None)
    if settings is not None:  # our app: a foreign one publishes nothing of ours
        serve(settings, multiprocess=True)


@signals.worker_process_shutdown.connect
def _child_exited(pid: int | None = None, **_: Any) -> None:
    if _served is not None and pid is not None:
        exposition.child_exited(pid)


@signals.worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    stop()
