"""Verdicts on the canaries (pure): each stage of a run and its latency, an honest failure,
the burst's throughput and lateness."""

from __future__ import annotations

from datetime import datetime

from personal_assistant.doctor.canary import Burst, RunTrace
from personal_assistant.doctor.report import Check, failed, passed

#: The stages of a run, each timed from the previous one.
STAGES = (
    ("queued", "scheduled_for", "queued_at"),
    ("published", "queued_at", "published_at"),
    ("running", "published_at", "started_at"),
    ("succeeded", "started_at", "finished_at"),
    ("notified", "finished_at", "delivered_at"),
)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


def stage_latencies(trace: RunTrace) -> dict[str, float]:
    """Milliseconds from each stage to the next, and from the due time to the notification."""
    figures = {}
    for name, start, end in STAGES:
        value = _ms(getattr(trace, start), getattr(trace, end))
        if value is not None:
            figures[f"{name}_ms"] = value
    total = _ms(trace.scheduled_for, trace.delivered_at)
    if total is not None:
        figures["due_to_notified_ms"] = total
    return figures


def _reached(trace: RunTrace) -> str:
    if trace.state is None:
        return "no run was made: is the scheduler (beat) running?"
    if trace.started_at is None:
        return f"the run stayed {trace.state}: no worker took it (is one consuming ai_tasks?)"
    if trace.finished_at is None:
        return "the run started and did not finish"
    if trace.state != "succeeded":
        return f"the run ended {trace.state}: {trace.error or ''}".strip()
    return "the in-app notification was not delivered (is one consuming email_tasks?)"


def canary(trace: RunTrace) -> Check:
    title = "A canary task runs end to end"
    figures = stage_latencies(trace)
    if trace.state == "succeeded" and trace.delivered_at is not None:
        stages = ", ".join(
            f"{name} +{figures[name + '_ms']:.0f} ms"
            for name, *_ in STAGES
            if name + "_ms" in figures
        )
        total = figures.get("due_to_notified_ms", 0.0)
        return passed(
            "canary.run", title, f"{stages}: notified {total:.0f} ms after due", **figures
        )
    return failed(
        "canary.run",
        title,
        f"after {trace.waited_s:.0f} s: {_reached(trace)}",
        "pa status, then the worker and beat logs (logs/core.log)",
        **figures,
    )


def failing_canary(trace: RunTrace) -> Check:
    title = "A failing canary retries and ends failed"
    if trace.state == "failed" and trace.attempts >= 2 and trace.error:
        return passed(
            "canary.failure",
            title,
            f"ended failed, attempt {trace.attempts}: {trace.error.splitlines()[0][:160]}",
            attempts=trace.attempts,
        )
    return failed(
        "canary.failure",
        title,
        f"after {trace.waited_s:.0f} s: state {trace.state}, {trace.attempts} attempt(s)",
        "check the reaper and retries: maintenance_tasks consumers, RETRY_BASE_SECONDS",
    )


def channel_test(name: str, kind: str, delivered: bool, reason: str | None) -> Check:
    """A test message sent through a user's channel (``--deep --user``)."""
    check_id, title = f"channels.{name}", f"Channel {name} ({kind}) delivers a test message"
    if delivered:
        return passed(check_id, title, f"the {kind} channel {name} accepted a test message")
    return failed(
        check_id,
        title,
        f"the {kind} channel {name} refused a test message: {reason or 'no reason given'}",
        f"pa channel test {name} --user <id> after fixing the channel's URL or the service",
    )


def _percentile(values: tuple[float, ...], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def burst(result: Burst) -> Check:
    title = f"{result.runs} runs due at once"
    p50 = _percentile(result.lateness_s, 0.50) * 1000
    p99 = _percentile(result.lateness_s, 0.99) * 1000
    rate = result.finished / result.seconds if result.seconds > 0 else float(result.finished)
    figures = {
        "runs_per_s": round(rate, 1),
        "lateness_p50_ms": round(p50, 1),
        "lateness_p99_ms": round(p99, 1),
    }
    evidence = (
        f"{result.finished}/{result.runs} finished {result.seconds:.2f} s after their time "
        f"({rate:.0f} runs/s), lateness p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    if result.timed_out:
        return failed(
            "canary.burst", title, evidence, "add workers on ai_tasks; see pa status", **figures
        )
    return passed("canary.burst", title, evidence, **figures)
