"""What the call sites count, in their own words; each is a no-op while metrics are off.

A caller hands over what happened (the runs it stored, one agent call, one tick), after the
fact and after its transaction committed, so that a write tried again is not counted twice.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from personal_assistant.metrics import catalogue as c
from personal_assistant.metrics.instruments import active


def observe_all(histogram: Any, values: Iterable[float]) -> None:
    """``histogram.observe(value)`` for each value, added up first: one increment of the sum
    and one per bucket that got values.

    ``observe`` takes two locks per value (in multiprocess mode, two writes to its file); a
    worker observes three histograms per run, thousands of runs a second, a group of them at
    a time: counted one by one, metrics cost the end-to-end benchmark 8.6-11.9 % of its rate.
    This reads the library's own fields of a histogram child (``_upper_bounds``, ``_buckets``,
    ``_sum``: prometheus-client < 1; ``tests/unit/test_metrics_record.py`` compares the two).
    """
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    seen = False
    for value in values:
        seen = True
        total += value
        if value <= bounds[-1]:  # as observe: a value above every bound (NaN) has no bucket
            counts[bisect_left(bounds, value)] += 1
    if not seen:
        return
    histogram._sum.inc(total)
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def runs_finished(outcomes: Iterable[tuple[str, str, float]]) -> None:
    """Stored run attempts: ``(outcome, task_type, seconds from claim to stored outcome)``."""
    metrics = active()
    if metrics is None:
        return
    counts: Counter[tuple[str, str]] = Counter()
    durations: defaultdict[str, list[float]] = defaultdict(list)
    for outcome, task_type, seconds in outcomes:
        counts[(outcome, task_type)] += 1
        durations[task_type].append(seconds)
    for task_type, values in durations.items():
        observe_all(metrics.child(c.RUN_DURATION, task_type), values)
    for (outcome, task_type), count in counts.items():
        metrics.child(c.RUNS_FINISHED, outcome, task_type).inc(count)


def lateness(seconds: Iterable[float]) -> None:
    """First attempts claimed: how long after its scheduled instant each was claimed."""
    metrics = active()
    if metrics is None:
        return
    observe_all(metrics[c.RUN_LATENESS], (max(0.0, value) for value in seconds))


def in_flight(change: int) -> None:
    """Runs reserved (positive) or released (negative) in this process."""
    metrics = active()
    if metrics is not None:
        metrics[c.RUNS_IN_FLIGHT].inc(change)


def in_flight_limit(limit: int) -> None:
    metrics = active()
    if metrics is not None:
        metrics[c.RUNS_IN_FLIGHT_LIMIT].set(limit)


def agent_calls(calls: Iterable[tuple[str, float, str | None]]) -> None:
    """Calls to the agent: ``(agent, seconds, error)``, ``error`` one of
    :data:`~.catalogue.AGENT_ERRORS`, or None."""
    metrics = active()
    if metrics is None:
        return
    durations: defaultdict[str, list[float]] = defaultdict(list)
    errors: Counter[tuple[str, str]] = Counter()
    for agent, seconds, error in calls:
        durations[agent].append(seconds)
        if error is not None:
            errors[(agent, error)] += 1
    for agent, values in durations.items():
        observe_all(metrics.child(c.AGENT_CALL, agent), values)
    for (agent, error), count in errors.items():
        if error == "rate_limited":
            metrics[c.RATE_LIMIT_WAITS].inc(count)
        metrics.child(c.AGENT_ERRORS_TOTAL, agent, error).inc(count)


def tokens(model: str, prompt: int | None, completion: int | None) -> None:
    """Tokens the agent reported; ``model``: the configured one (a reply's is free text)."""
    metrics = active()
    if metrics is None:
        return
    if prompt:
        metrics.child(c.AGENT_TOKENS, model, "prompt").inc(prompt)
    if completion:
        metrics.child(c.AGENT_TOKENS, model, "completion").inc(completion)


def tick(seconds: float) -> None:
    """One scheduler tick."""
    metrics = active()
    if metrics is not None:
        metrics[c.SCHEDULER_TICK].observe(seconds)


def runs_created(runs: int, skipped: int) -> None:
    """Runs the scheduler created, and missed firings its catch-up policy skipped."""
    metrics = active()
    if metrics is None:
        return
    if runs:
        metrics[c.SCHEDULER_CLAIMED].inc(runs)
    if skipped:
        metrics[c.SCHEDULER_SKIPPED].inc(skipped)


def reaped(retried: int, failed: int) -> None:
    metrics = active()
    if metrics is None:
        return
    if retried:
        metrics.child(c.REAPER_ACTIONS_TOTAL, "retried").inc(retried)
    if failed:
        metrics.child(c.REAPER_ACTIONS_TOTAL, "failed").inc(failed)


def notifications(results: Iterable[tuple[str, str]]) -> None:
    """Delivery attempts: ``(channel kind, result)``, result one of NOTIFICATION_RESULTS."""
    metrics = active()
    if metrics is None:
        return
    for (channel, result), count in Counter(results).items():
        metrics.child(c.NOTIFICATIONS, channel, result).inc(count)


def delivered(channel: str, count: int) -> None:
    """``count`` notifications of one channel kind delivered (in-app ones: by being written)."""
    metrics = active()
    if metrics is not None and count > 0:
        metrics.child(c.NOTIFICATIONS, channel, "delivered").inc(count)


def calendar_sync(result: str) -> None:
    metrics = active()
    if metrics is not None:
        metrics.child(c.CALENDAR_SYNCS, result).inc()
