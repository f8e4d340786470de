"""The metric catalogue keeps Prometheus's conventions, and the recorders count what they say.

Conventions (prometheus.io, "Metric and label naming"): one namespace; base units in the name;
``_total`` on counters and only there; no unbounded label (a user id, a task title, a URL);
buckets fine enough below 100 ms that a p99 of 100 ms or less shows.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from personal_assistant.metrics import catalogue, instruments, record
from personal_assistant.metrics.catalogue import Kind

UNBOUNDED = {"user", "user_id", "task", "task_id", "run_id", "title", "url", "worker_id", "pid"}


@pytest.mark.parametrize("metric", catalogue.ALL, ids=lambda m: m.name)
def test_each_metric_follows_the_naming_rules(metric: catalogue.Metric) -> None:
    assert metric.name.startswith("pa_")
    assert metric.name == metric.name.lower() and " " not in metric.name
    assert metric.name.endswith("_total") == (metric.kind is Kind.COUNTER)
    if metric.kind is Kind.HISTOGRAM:
        assert metric.name.endswith("_seconds") and metric.buckets
    assert not UNBOUNDED & set(metric.labels), metric.labels
    assert metric.help.endswith(".")


def test_names_are_unique_and_latency_buckets_show_a_100_ms_p99() -> None:
    names = [m.name for m in catalogue.ALL]
    assert len(names) == len(set(names))
    below = [b for b in catalogue.LATENCY_BUCKETS if b <= 0.1]
    assert len(below) >= 5 and 0.1 in below
    assert list(catalogue.LATENCY_BUCKETS) == sorted(catalogue.LATENCY_BUCKETS)


def _samples(made: instruments.Instruments) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(made.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_recorders_do_nothing_while_metrics_are_off() -> None:
    instruments.disable()
    record.runs_finished([("succeeded", "reminder", 0.1)])
    record.agent_calls([("offline", 0.01, "timeout")])
    record.notifications([("in_app", "delivered")])
    assert instruments.active() is None


def test_recorders_count_by_label(metrics_enabled: instruments.Instruments) -> None:
    record.runs_finished(
        [("succeeded", "reminder", 0.02), ("succeeded", "reminder", 0.2), ("failed", "check", 1)]
    )
    record.lateness([0.01, -0.5])  # a run claimed before its instant counts as on time
    record.agent_calls([("openai", 0.3, "rate_limited"), ("openai", 0.2, None)])
    record.tokens("gpt-4o-mini", 12, None)
    record.notifications([("webhook", "retrying"), ("webhook", "retrying")])
    record.runs_created(5, 2)
    record.reaped(1, 0)
    record.in_flight(3)
    record.in_flight(-1)

    got = _samples(metrics_enabled)

    def value(name: str, **labels: str) -> float | None:
        return got.get((name, tuple(sorted(labels.items()))))

    assert value("pa_runs_finished_total", outcome="succeeded", task_type="reminder") == 2
    assert value("pa_runs_finished_total", outcome="failed", task_type="check") == 1
    assert value("pa_run_duration_seconds_count", task_type="reminder") == 2
    assert value("pa_run_duration_seconds_bucket", le="0.025", task_type="reminder") == 1
    assert value("pa_run_lateness_seconds_bucket", le="0.005") == 1  # the early one, as 0
    assert value("pa_agent_errors_total", agent="openai", error="rate_limited") == 1
    assert value("pa_agent_call_seconds_count", agent="openai") == 2
    assert value("pa_rate_limit_waits_total") == 1
    assert value("pa_agent_tokens_total", direction="prompt", model="gpt-4o-mini") == 12
    assert value("pa_agent_tokens_total", direction="completion", model="gpt-4o-mini") is None
    assert value("pa_notifications_total", channel="webhook", result="retrying") == 2
    assert value("pa_scheduler_runs_created_total") == 5
    assert value("pa_scheduler_firings_skipped_total") == 2
    assert value("pa_reaper_actions_total", action="retried") == 1
    assert value("pa_runs_in_flight") == 2


def test_only_process_metrics_are_made_in_a_process(
    metrics_enabled: instruments.Instruments,
) -> None:
    made = set(metrics_enabled.by_name)
    assert made == {m.name for m in catalogue.ALL if m.source is catalogue.Source.PROCESS}
    assert "pa_queue_depth" not in made  # the exporter's, once per deployment


def test_observations_added_up_first_count_as_one_by_one() -> None:
    """:func:`record.observe_all` reads the library's fields of a histogram: it must count as
    ``observe`` does, bounds included (a value equal to a bound is in that bucket)."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    values = [0.0, 0.005, 0.0051, 0.1, 0.1, 2.5, 7.0, 1e9, -1.0]
    registries = CollectorRegistry(), CollectorRegistry()
    one, added = (
        Histogram("h", "h", ["k"], registry=r, buckets=(0.005, 0.1, 2.5, 5.0)).labels("a")
        for r in registries
    )
    for v in values:
        one.observe(v)
    record.observe_all(added, values)
    record.observe_all(added, [])  # nothing observed, nothing changed
    texts = [
        [line for line in generate_latest(r).decode().splitlines() if "_created" not in line]
        for r in registries
    ]
    assert texts[0] == texts[1]
    assert 'h_bucket{k="a",le="0.1"} 6.0' in texts[1]
    assert 'h_count{k="a"} 9.0' in texts[1]
