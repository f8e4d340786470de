"""The alert rules (pure): each holds on one side of its threshold only, with its key; the
ratio settings are fractions; the messages an admin is told."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from personal_assistant.alerts import messages
from personal_assistant.alerts.rules import (
    MIN_ATTEMPTS,
    MIN_OUTCOMES,
    MIN_SAMPLES,
    RULES,
    Facts,
    Severity,
    Thresholds,
    firing,
    quantile,
    rule_named,
)
from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError
from personal_assistant.notifications.content import TITLE_LIMIT

ALERTS_YML = Path(__file__).parents[2] / "deploy" / "prometheus" / "alerts.yml"
QUEUES = ("ai_tasks", "email_tasks", "file_tasks", "sync_tasks", "maintenance_tasks")

#: A healthy deployment: no rule holds.
HEALTHY = Facts(
    consumers=dict.fromkeys(QUEUES, 1),
    schedulers_live=1,
    scheduler_age_s=5.0,
    broker_up=True,
    oldest_queued_age_s=0.0,
    tasks_overdue=0,
    channels_broken=0,
    oldest_message_age_s=dict.fromkeys(QUEUES, 1.0),
    lateness_s=[0.5] * 20,
    finished=50,
    failed=1,
    attempts=50,
    attempt_errors=1,
)
LIMITS = Thresholds()


def held(**changes: Any) -> set[str]:
    """The keys of the alerts that hold for the healthy facts with ``changes``."""
    return set(firing(replace(HEALTHY, **changes), LIMITS))


def test_a_healthy_deployment_fires_nothing() -> None:
    assert firing(HEALTHY, LIMITS) == {}


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        # NoConsumerOnQueue: per queue, keyed by it.
        (
            {"consumers": {**dict.fromkeys(QUEUES, 1), "ai_tasks": 0}},
            {"NoConsumerOnQueue:ai_tasks"},
        ),
        (
            {"consumers": {"ai_tasks": 0, "sync_tasks": 0, "email_tasks": 2}},
            {"NoConsumerOnQueue:ai_tasks", "NoConsumerOnQueue:sync_tasks"},
        ),
        ({"consumers": {"ai_tasks": 1}}, set()),
        # SchedulerSilent: none live, or the last beat older than 60 s; one plain key.
        ({"schedulers_live": 0}, {"SchedulerSilent"}),
        ({"schedulers_live": 0, "scheduler_age_s": None}, {"SchedulerSilent"}),
        ({"scheduler_age_s": 60.5}, {"SchedulerSilent"}),
        ({"scheduler_age_s": 60.0}, set()),
        ({"scheduler_age_s": None}, set()),
        # BrokerDown.
        ({"broker_up": False}, {"BrokerDown"}),
        # OldestQueuedRunOld: above 300 s.
        ({"oldest_queued_age_s": 300.5}, {"OldestQueuedRunOld"}),
        ({"oldest_queued_age_s": 300.0}, set()),
        # LatenessP99High: p99 above 5 s, over at least MIN_SAMPLES samples.
        ({"lateness_s": [0.0] * 9 + [5.5]}, {"LatenessP99High"}),
        ({"lateness_s": [0.0] * 9 + [5.0]}, set()),
        ({"lateness_s": [100.0] * (MIN_SAMPLES - 1)}, set()),
        ({"lateness_s": [100.0] * MIN_SAMPLES}, {"LatenessP99High"}),
        ({"lateness_s": []}, set()),
        # FailureRatioHigh: a fraction, above 0.2, of at least MIN_OUTCOMES finished runs.
        ({"finished": 10, "failed": 3}, {"FailureRatioHigh"}),
        ({"finished": 10, "failed": 2}, set()),
        ({"finished": MIN_OUTCOMES - 1, "failed": MIN_OUTCOMES - 1}, set()),
        ({"finished": MIN_OUTCOMES, "failed": MIN_OUTCOMES}, {"FailureRatioHigh"}),
        ({"finished": 0, "failed": 0}, set()),
        # AgentErrorBurst: above 0.5 of at least MIN_ATTEMPTS attempts.
        ({"attempts": 5, "attempt_errors": 3}, {"AgentErrorBurst"}),
        ({"attempts": 10, "attempt_errors": 5}, set()),
        ({"attempts": MIN_ATTEMPTS - 1, "attempt_errors": MIN_ATTEMPTS - 1}, set()),
        ({"attempts": 0, "attempt_errors": 0}, set()),
        # QueueBacklog: per queue, above 300 s.
        ({"oldest_message_age_s": {"sync_tasks": 301.0}}, {"QueueBacklog:sync_tasks"}),
        ({"oldest_message_age_s": {"sync_tasks": 300.0}}, set()),
        ({"oldest_message_age_s": {}}, set()),
        # TasksOverdue and ChannelBroken: any.
        ({"tasks_overdue": 1}, {"TasksOverdue"}),
        ({"channels_broken": 2}, {"ChannelBroken"}),
    ],
)
def test_each_rule_holds_on_one_side_of_its_threshold(
    changes: dict[str, Any], keys: set[str]
) -> None:
    assert held(**changes) == keys


def test_a_firing_carries_its_rule_summary_and_figure() -> None:
    found = firing(
        replace(
            HEALTHY,
            consumers={"ai_tasks": 0},
            finished=10,
            failed=3,
            attempts=6,
            attempt_errors=4,
            oldest_message_age_s={"sync_tasks": 450.0},
            scheduler_age_s=90.0,
        ),
        LIMITS,
    )
    assert sorted(found) == [
        "AgentErrorBurst",
        "FailureRatioHigh",
        "NoConsumerOnQueue:ai_tasks",
        "QueueBacklog:sync_tasks",
        "SchedulerSilent",
    ]
    consumer = found["NoConsumerOnQueue:ai_tasks"]
    assert consumer.rule is rule_named("NoConsumerOnQueue")
    assert consumer.rule.severity is Severity.CRITICAL
    assert (consumer.summary, consumer.value) == ("No live worker consumes ai_tasks", "0 consumers")
    failures = found["FailureRatioHigh"]
    assert (failures.summary, failures.value) == ("30% of finished runs failed", "3 of 10 runs")
    assert failures.rule.severity is Severity.WARNING
    assert found["AgentErrorBurst"].value == "4 of 6 attempts"
    assert (
        found["QueueBacklog:sync_tasks"].summary == "sync_tasks is behind: oldest message 7.5 min"
    )
    assert found["SchedulerSilent"].value == "last beat 90 s ago"


def test_thresholds_of_other_settings_move_the_edges() -> None:
    strict = Thresholds(failure_ratio=0.1, agent_error_ratio=0.2, scheduler_silent_s=10.0)
    facts = replace(
        HEALTHY, finished=10, failed=2, attempts=5, attempt_errors=2, scheduler_age_s=11.0
    )
    assert set(firing(facts, strict)) == {"FailureRatioHigh", "AgentErrorBurst", "SchedulerSilent"}
    assert firing(facts, LIMITS) == {}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 0.99, 5.0),
        ([3.0, 1.0, 2.0], 0.5, 2.0),
        ([3.0, 1.0, 2.0], 0.0, 1.0),
        ([3.0, 1.0, 2.0], 1.0, 3.0),
        ([float(v) for v in range(100, 0, -1)], 0.99, 99.0),
        ([float(v) for v in range(1, 11)], 0.99, 10.0),
        ([float(v) for v in range(1, 201)], 0.99, 198.0),
    ],
)
def test_quantile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert quantile(values, q) == expected


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ("SchedulerSilent", "60 s"),
        ("LatenessP99High", "5 s"),
        ("OldestQueuedRunOld", "300 s"),
        ("QueueBacklog", "300 s"),
        ("FailureRatioHigh", "20%"),
        ("AgentErrorBurst", "50%"),
        ("BrokerDown", ""),
        ("ChannelBroken", ""),
    ],
)
def test_thresholds_are_told_in_their_unit(rule: str, text: str) -> None:
    assert LIMITS.of(rule) == text


def test_other_thresholds_are_told_as_set() -> None:
    limits = Thresholds(lateness_p99_s=2.5, failure_ratio=0.05)
    assert limits.of("LatenessP99High") == "2.5 s"
    assert limits.of("FailureRatioHigh") == "5%"
    conditions = {r.name: r.condition.format(threshold=limits.of(r.name)) for r in RULES}
    assert conditions["FailureRatioHigh"].startswith("more than 5% of the runs")
    assert "above 2.5 s" in conditions["LatenessP99High"]
    assert not any("{" in text for text in conditions.values())


def _prometheus_rules() -> dict[str, dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS_YML.read_text(encoding="utf-8"))
    return {r["alert"]: r for group in loaded["groups"] for r in group["rules"] if "alert" in r}


def test_every_rule_is_an_alert_of_the_prometheus_rules_with_its_severity() -> None:
    prometheus = _prometheus_rules()
    assert len({r.name for r in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.name in prometheus, rule.name
        assert prometheus[rule.name]["labels"]["severity"] == rule.severity.value, rule.name


@pytest.mark.parametrize(
    ("rule", "written"),
    [
        ("SchedulerSilent", f"> {LIMITS.scheduler_silent_s:g}"),
        ("LatenessP99High", f"> {LIMITS.lateness_p99_s:g}"),
        ("OldestQueuedRunOld", f"> {LIMITS.oldest_queued_s:g}"),
        ("QueueBacklog", f"> {LIMITS.queue_backlog_s:g}"),
        ("FailureRatioHigh", f"> {LIMITS.failure_ratio:g}"),
        ("FailureRatioHigh", f">= {MIN_OUTCOMES}"),
        ("AgentErrorBurst", f"> {LIMITS.agent_error_ratio:g}"),
        ("AgentErrorBurst", f">= {MIN_ATTEMPTS}"),
    ],
)
def test_default_thresholds_are_those_of_the_prometheus_rules(rule: str, written: str) -> None:
    expr = " ".join(_prometheus_rules()[rule]["expr"].split())
    assert written in expr


@pytest.mark.parametrize("name", ["ALERT_FAILURE_RATIO", "ALERT_AGENT_ERROR_RATIO"])
def test_a_percentage_is_refused_with_the_fraction_it_meant(name: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings(**{name: 20})
    assert err.value.field == name
    assert "0.2" in err.value.message and "ratio" in err.value.message
    assert str(err.value).startswith(f"{name}: ")


@pytest.mark.parametrize("name", ["ALERT_FAILURE_RATIO", "ALERT_AGENT_ERROR_RATIO"])
def test_a_percentage_in_the_environment_is_refused(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, "20")
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env()
    assert err.value.field == name
    assert "0.2" in err.value.message


@pytest.mark.parametrize("name", ["ALERT_FAILURE_RATIO", "ALERT_AGENT_ERROR_RATIO"])
@pytest.mark.parametrize("value", [0, 1.5, -0.1, 250])
def test_a_ratio_out_of_range_is_refused(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings(**{name: value})
    assert err.value.field == name
    assert f"got {value:g}" in err.value.message


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("ALERT_FAILURE_RATIO", "alert_failure_ratio"),
        ("ALERT_AGENT_ERROR_RATIO", "alert_agent_error_ratio"),
    ],
)
@pytest.mark.parametrize("value", [0.2, 1, "0.05"])
def test_a_ratio_in_range_is_accepted(name: str, attribute: str, value: float | str) -> None:
    assert getattr(Settings(**{name: value}), attribute) == float(value)


NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
#: Every rule holds: one firing of each (and two of the rules about a queue).
EVERYTHING = Facts(
    consumers={"ai_tasks": 0, "sync_tasks": 0},
    schedulers_live=0,
    scheduler_age_s=None,
    broker_up=False,
    oldest_queued_age_s=900.0,
    tasks_overdue=2,
    channels_broken=1,
    oldest_message_age_s={"email_tasks": 400.0},
    lateness_s=[30.0] * 10,
    finished=10,
    failed=5,
    attempts=10,
    attempt_errors=9,
)


def test_every_rule_can_hold_at_once() -> None:
    found = firing(EVERYTHING, LIMITS)
    assert {f.rule.name for f in found.values()} == {r.name for r in RULES}


def test_the_opened_message_names_severity_rule_and_action() -> None:
    held = firing(EVERYTHING, LIMITS)["NoConsumerOnQueue:ai_tasks"]
    told = messages.opened(held, since=NOW - timedelta(seconds=150), now=NOW)
    assert told.title == "[critical] No live worker consumes ai_tasks"
    assert "Alert NoConsumerOnQueue opened at 2026-12-05 12:00:00 UTC" in told.body
    assert "(0 consumers; first seen 2026-12-05 11:57:30 UTC, 2.5 min ago)" in told.body
    assert "Start a worker on it (`pa worker -Q ai_tasks`)" in told.body
    failures = firing(EVERYTHING, LIMITS)["FailureRatioHigh"]
    warning = messages.opened(failures, since=NOW, now=NOW)
    assert warning.title == "[warning] 50% of finished runs failed"
    assert "Alert FailureRatioHigh opened" in warning.body
    assert rule_named("FailureRatioHigh").action in warning.body


@pytest.mark.parametrize("key", sorted(firing(EVERYTHING, LIMITS)))
def test_every_opened_message_tells_its_action_filled_in(key: str) -> None:
    held = firing(EVERYTHING, LIMITS)[key]
    told = messages.opened(held, since=NOW - timedelta(minutes=3), now=NOW)
    assert told.title.startswith(f"[{held.rule.severity}] ")
    assert f"Alert {held.rule.name} opened" in told.body
    assert held.action in told.body
    assert "{" not in told.body


def test_the_resolved_message_names_the_rule_and_how_long_it_lasted() -> None:
    rule = rule_named("QueueBacklog")
    summary = "sync_tasks is behind: oldest message 7.5 min"
    told = messages.resolved(rule, summary, opened_at=NOW - timedelta(hours=3), now=NOW)
    assert told.title == f"[resolved] {summary}"
    assert told.body.startswith(
        "Alert QueueBacklog resolved at 2026-12-05 12:00:00 UTC after 3.0 h: "
    )
    assert summary in told.body and told.body.endswith("no longer holds.")
    never_opened = messages.resolved(rule, summary, opened_at=None, now=NOW)
    assert "resolved at 2026-12-05 12:00:00 UTC: " in never_opened.body


def test_a_long_summary_is_trimmed_in_the_title_only() -> None:
    held = replace(firing(EVERYTHING, LIMITS)["TasksOverdue"], summary="word " * 80)
    told = messages.opened(held, since=NOW, now=NOW)
    assert len(told.title) <= TITLE_LIMIT and told.title.endswith("…")
    assert held.summary in told.body


def test_the_test_message_says_it_is_a_test() -> None:
    told = messages.test(NOW)
    assert told.title == "[test] Alerts reach you"
    assert "2026-12-05 12:00:00 UTC" in told.body and "pa alerts test" in told.body
