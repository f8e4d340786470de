"""``/metrics`` over HTTP for one process (prometheus_client's own server, in a thread).

A worker counts in multiprocess mode (its prefork children count, its main process serves the
sum; a threads-pool worker is the one process): :func:`serve_worker` makes the directory the
processes write to, and removes it on :meth:`Served.close`. A scheduler is one process:
:func:`serve_process` serves its registry as it is.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from personal_assistant.metrics.instruments import enable

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


@dataclass
class Served:
    """A running ``/metrics`` server; ``close`` stops it and removes its files."""

    server: WSGIServer
    thread: threading.Thread
    directory: Path | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def serve_worker(port: int, bind: str) -> Served | None:
    """Count in multiprocess mode and serve the sum of this process and its children."""
    directory = Path(tempfile.mkdtemp(prefix="pa-metrics-"))
    enable(directory)
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]  # untyped in the library
    served = start(registry, port, bind)
    if served is None:
        shutil.rmtree(directory, ignore_errors=True)
        return None
    served.directory = directory
    return served


def serve_process(port: int, bind: str) -> Served | None:
    """Serve this one process's metrics."""
    return start(enable().registry, port, bind)


def child_exited(pid: int) -> None:
    """A prefork child ended: its live gauges (runs in flight) no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped in the library


def start(registry: Collector, port: int, bind: str) -> Served | None:
    """Serve ``registry`` on ``bind:port`` (0: any free port); None when it cannot listen."""
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=bind, registry=registry)
    except OSError as exc:  # the port is taken: the process works on, without /metrics
        log.error("event=metrics_not_served bind=%s port=%s error=%s", bind, port, exc)
        return None
    log.info("event=metrics_served bind=%s port=%s", bind, server.server_address[1])
    return Served(server, thread)
