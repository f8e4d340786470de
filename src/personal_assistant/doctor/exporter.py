"""``pa metrics serve``: the deployment's figures on ``/metrics``, once per deployment.

Queue depths, live processes, overdue tasks, waiting runs and broken channels are facts of the
deployment, not of a process: were every worker to publish them, a dashboard would count them
once per worker. One exporter reads them, at each scrape, from the database (the heartbeats
table, the runs and tasks) and the broker, with the readers ``pa status`` and ``pa doctor`` use.

A scrape runs on the HTTP server's thread; it hands the reading to the command's event loop
(the one that owns the database engine) and waits for it, at most :data:`SCRAPE_TIMEOUT_S`.
A broker that is away leaves its figures out (and ``pa_broker_up`` 0); a database that is away
fails the scrape, which Prometheus records as ``up == 0``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from personal_assistant.metrics import catalogue as c
from personal_assistant.workers.deployment import Figures, read_figures

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

__all__ = ["DeploymentCollector", "Figures", "families", "read_figures", "registry_for"]

SCRAPE_TIMEOUT_S = 10.0


def families(figures: Figures) -> Iterator[Any]:
    """The figures as Prometheus metric families (gauges), named by the catalogue."""
    from prometheus_client.core import GaugeMetricFamily

    def gauge(metric: c.Metric, values: dict[str, float] | float | None) -> Any:
        family = GaugeMetricFamily(metric.name, metric.help, labels=metric.labels or None)
        if isinstance(values, dict):
            for label, value in sorted(values.items()):
                family.add_metric([label], value)
        elif values is not None:
            family.add_metric([], values)
        return family

    yield gauge(c.BROKER_UP, 1.0 if figures.broker_up else 0.0)
    yield gauge(c.QUEUE_DEPTH, dict(figures.depths))
    yield gauge(c.QUEUE_OLDEST_AGE, dict(figures.oldest_message_age_s))
    yield gauge(c.QUEUE_CONSUMERS, dict(figures.consumers))
    yield gauge(c.PROCESSES_LIVE, dict(figures.live))
    yield gauge(c.SCHEDULER_LAST_BEAT_AGE, figures.scheduler_age_s)
    yield gauge(c.TASKS_OVERDUE, figures.tasks_overdue)
    yield gauge(c.RUN_QUEUED_OLDEST_AGE, figures.oldest_queued_age_s)
    yield gauge(c.CHANNELS_BROKEN, figures.channels_broken)


class DeploymentCollector:
    """A prometheus_client collector that reads the figures on ``loop`` at each scrape."""

    def __init__(self, read: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        self._read = read  # a coroutine function answering Figures
        self._loop = loop

    def collect(self) -> Iterator[Any]:
        future = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
        figures: Figures = future.result(timeout=SCRAPE_TIMEOUT_S)
        yield from families(figures)

    def describe(self) -> list[Any]:
        return []  # nothing read at registration: the database is asked at scrape time


def registry_for(collector: DeploymentCollector) -> Collector:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
