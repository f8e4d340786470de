"""The process's metric objects, made from the catalogue when metrics are turned on.

Nothing is counted until :func:`enable` runs (a worker or scheduler started with
``METRICS_PORT``, or a test): the call sites ask :func:`active` and skip their counting when it
answers ``None``, so a process without metrics pays one function call per event.

Under Celery's prefork pool the children count and the parent serves: ``enable`` is given a
directory and turns on prometheus_client's multiprocess mode before the first metric is made.
Each process writes its values to files there; the parent's ``/metrics`` adds them up
(:mod:`.exposition`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personal_assistant.metrics import catalogue
from personal_assistant.metrics.catalogue import Kind, Metric

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class Instruments:
    """This process's metric objects by catalogue name, and the registry that holds them."""

    registry: CollectorRegistry
    by_name: dict[str, Any]
    multiprocess_dir: Path | None
    _children: dict[tuple[str, tuple[str, ...]], Any] = field(default_factory=dict)

    def __getitem__(self, metric: Metric) -> Any:
        return self.by_name[metric.name]

    def child(self, metric: Metric, *labels: str) -> Any:
        """``metric`` with these label values: the library's ``labels()``, looked up once.

        ``labels()`` checks its values and takes a lock on every call, about a microsecond; a
        worker counts several labelled series per run, thousands of runs a second. The values
        come from short fixed lists (outcomes, task types, channels, the configured agent and
        model), and no series is ever removed, so the cache stays small and never stale.
        """
        key = (metric.name, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = self.by_name[metric.name].labels(*labels)
        return found


_active: Instruments | None = None


def active() -> Instruments | None:
    """This process's instruments, or ``None`` while metrics are off."""
    return _active


def enable(multiprocess_dir: Path | None = None) -> Instruments:
    """Turn metrics on in this process (idempotent); ``multiprocess_dir``: count into files
    there, for a prefork parent to add up."""
    global _active
    if _active is not None:
        return _active
    if multiprocess_dir is not None:
        os.environ[MULTIPROC_ENV] = str(multiprocess_dir)
        # The library picks its value class when first imported, from the variable above; in a
        # worker it was imported already (Flower's ``celery flower`` command, which the
        # ``celery`` program loads, imports it): pick the multiprocess one here.
        from prometheus_client import values

        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # untyped in the library
    from prometheus_client import CollectorRegistry, disable_created_metrics

    # No ``_created`` series: Prometheus sees a counter reset by itself.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
    registry = CollectorRegistry(auto_describe=True)
    by_name = {
        metric.name: _make(metric, registry)
        for metric in catalogue.ALL
        if metric.source is catalogue.Source.PROCESS
    }
    _active = Instruments(registry, by_name, multiprocess_dir)
    return _active


def disable() -> None:
    """Turn metrics off in this process (tests; a prefork child keeps its parent's)."""
    global _active
    _active = None


def _make(metric: Metric, registry: CollectorRegistry) -> Any:
    from prometheus_client import Counter, Gauge, Histogram

    # prometheus_client adds ``_total`` to a counter's name itself.
    if metric.kind is Kind.COUNTER:
        name = metric.name.removesuffix("_total")
        return Counter(name, metric.help, metric.labels, registry=registry)
    if metric.kind is Kind.HISTOGRAM:
        return Histogram(
            metric.name, metric.help, metric.labels, registry=registry, buckets=metric.buckets
        )
    return Gauge(
        metric.name,
        metric.help,
        metric.labels,
        registry=registry,
        multiprocess_mode=metric.combine,
    )
