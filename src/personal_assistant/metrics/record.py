"""What the call sites count, in their own words; each is a no-op while metrics are off.

A caller hands over what happened (the runs it stored, one agent call, one tick), after the
fact and after its transaction committed, so that a write tried again is not counted twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from personal_assistant.metrics import catalogue as c
from personal_assistant.metrics.instruments import active


def runs_finished(outcomes: Iterable[tuple[str, str, float]]) -> None:
    """Stored run attempts: ``(outcome, task_type, seconds from claim to stored outcome)``."""
    metrics = active()
    if metrics is None:
        return
    counts: Counter[tuple[str, str]] = Counter()
    for outcome, task_type, seconds in outcomes:
        counts[(outcome, task_type)] += 1
        metrics.child(c.RUN_DURATION, task_type).observe(seconds)
    for (outcome, task_type), count in counts.items():
        metrics.child(c.RUNS_FINISHED, outcome, task_type).inc(count)


def lateness(seconds: Iterable[float]) -> None:
    """First attempts claimed: how long after its scheduled instant each was claimed."""
    metrics = active()
    if metrics is None:
        return
    histogram = metrics[c.RUN_LATENESS]
    for value in seconds:
        histogram.observe(max(0.0, value))


def in_flight(change: int) -> None:
    """Runs reserved (positive) or released (negative) in this process."""
    metrics = active()
    if metrics is not None:
        metrics[c.RUNS_IN_FLIGHT].inc(change)


def in_flight_limit(limit: int) -> None:
    metrics = active()
    if metrics is not None:
        metrics[c.RUNS_IN_FLIGHT_LIMIT].set(limit)


def agent_call(agent: str, seconds: float, error: str | None) -> None:
    """One call to the agent; ``error``: one of :data:`~.catalogue.AGENT_ERRORS`, or None."""
    metrics = active()
    if metrics is None:
        return
    metrics.child(c.AGENT_CALL, agent).observe(seconds)
    if error == "rate_limited":
        metrics[c.RATE_LIMIT_WAITS].inc()
    if error is not None:
        metrics.child(c.AGENT_ERRORS_TOTAL, agent, error).inc()


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
