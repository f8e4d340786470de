"""The alert rules (pure): the conditions of ``deploy/prometheus/alerts.yml``, on facts read
from the database and the broker instead of metrics.

Each rule has the name of its Prometheus alert; :func:`firing` answers, for one set of
:class:`Facts` and :class:`Thresholds`, every alert that holds, keyed by rule and subject
(``NoConsumerOnQueue:ai_tasks``). Thresholds carry their unit in their name: ``_s`` seconds,
``_ratio`` a fraction of 1, compared with figures in the same unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "RULES",
    "Facts",
    "Firing",
    "Rule",
    "Severity",
    "Thresholds",
    "firing",
    "quantile",
    "rule_named",
    "seconds_text",
]


class Severity(StrEnum):
    #: Runs or notifications stop for everyone until someone acts.
    CRITICAL = "critical"
    #: Degraded, or one part broken: look within the working day.
    WARNING = "warning"


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    #: What holds, for ``pa alerts list``; ``{threshold}`` is the rule's threshold.
    condition: str
    #: What to do about it, told with the alert (``{subject}``: the queue it is about).
    action: str


RULES: tuple[Rule, ...] = (
    Rule(
        "NoConsumerOnQueue",
        Severity.CRITICAL,
        "no live worker consumes a queue",
        "Start a worker on it (`pa worker -Q {subject}`) or restart the one that should, "
        "then check `pa status`.",
    ),
    Rule(
        "SchedulerSilent",
        Severity.CRITICAL,
        "no live scheduler, or its last beat older than {threshold}",
        "Start one (`pa beat`) or look at why it stopped (its log, its database connection).",
    ),
    Rule(
        "BrokerDown",
        Severity.CRITICAL,
        "the broker does not answer",
        "Check that Redis (or RabbitMQ) runs and is reachable, then `pa doctor`.",
    ),
    Rule(
        "OldestQueuedRunOld",
        Severity.CRITICAL,
        "a run has waited for a worker longer than {threshold}",
        "Check that workers consume ai_tasks (`pa status`); if they do, restart them.",
    ),
    Rule(
        "LatenessP99High",
        Severity.WARNING,
        "p99 of runs' start lateness over the window above {threshold}",
        "Add ai_tasks workers or raise their concurrency; look at the database if ticks are slow.",
    ),
    Rule(
        "FailureRatioHigh",
        Severity.WARNING,
        "more than {threshold} of the runs finished in the window failed (at least 10)",
        "`pa runs` shows their errors: a refused key or model, or an agent endpoint that is down.",
    ),
    Rule(
        "AgentErrorBurst",
        Severity.WARNING,
        "more than {threshold} of the run attempts started in the window ended in an error "
        "(at least 5)",
        "Check the agent's endpoint, key, model and quota (`pa doctor`).",
    ),
    Rule(
        "QueueBacklog",
        Severity.WARNING,
        "the oldest message in a queue is older than {threshold}",
        "Add workers on {subject} (`pa worker -Q {subject}`) or raise their concurrency; "
        "restart idle consumers.",
    ),
    Rule(
        "TasksOverdue",
        Severity.WARNING,
        "active tasks past their next firing and not claimed",
        "Look at the scheduler's log for failing ticks, and at `pa status`.",
    ),
    Rule(
        "ChannelBroken",
        Severity.WARNING,
        "a notification channel is disabled by a permanent delivery error",
        "`pa channel list -u USER` shows its reason; fix it and `pa channel test NAME`.",
    ),
)

_BY_NAME = {rule.name: rule for rule in RULES}

#: Fewest outcomes (runs finished) and attempts in the window for a ratio to count: one
#: failure among three runs on a quiet deployment is no alert.
MIN_OUTCOMES = 10
MIN_ATTEMPTS = 5
#: Fewest lateness samples for a p99 to count.
MIN_SAMPLES = 10


@dataclass(frozen=True)
class Thresholds:
    """The rules' thresholds, each in the unit its name says."""

    scheduler_silent_s: float = 60.0
    lateness_p99_s: float = 5.0
    oldest_queued_s: float = 300.0
    queue_backlog_s: float = 300.0
    failure_ratio: float = 0.2
    agent_error_ratio: float = 0.5

    def of(self, rule: str) -> str:
        """The threshold of ``rule`` as written in its condition (``60 s``, ``20%``)."""
        seconds = {
            "SchedulerSilent": self.scheduler_silent_s,
            "LatenessP99High": self.lateness_p99_s,
            "OldestQueuedRunOld": self.oldest_queued_s,
            "QueueBacklog": self.queue_backlog_s,
        }
        ratios = {"FailureRatioHigh": self.failure_ratio, "AgentErrorBurst": self.agent_error_ratio}
        if rule in seconds:
            return f"{seconds[rule]:g} s"
        if rule in ratios:
            return f"{ratios[rule]:.0%}"
        return ""


@dataclass(frozen=True)
class Facts:
    """What the rules look at, read at one instant (``None``: not known, no alert on it)."""

    consumers: Mapping[str, int]
    schedulers_live: int
    scheduler_age_s: float | None
    broker_up: bool
    oldest_queued_age_s: float
    tasks_overdue: int
    channels_broken: int
    #: Per queue, the age of its oldest message (Redis only).
    oldest_message_age_s: Mapping[str, float] = field(default_factory=dict)
    #: Start lateness of the runs started in the window, seconds.
    lateness_s: Sequence[float] = ()
    #: Runs finished in the window, and how many of them failed.
    finished: int = 0
    failed: int = 0
    #: Run attempts started in the window, and how many ended in an error.
    attempts: int = 0
    attempt_errors: int = 0


@dataclass(frozen=True)
class Firing:
    """One alert that holds: its key, rule, one-line summary and the figure that made it."""

    key: str
    rule: Rule
    summary: str
    value: str
    #: What it is about (a queue), or "".
    subject: str = ""

    @property
    def action(self) -> str:
        return self.rule.action.format(subject=self.subject)


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank; ``values`` not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def firing(facts: Facts, limits: Thresholds) -> dict[str, Firing]:
    """Every alert that holds for ``facts``, by key."""
    found: list[Firing] = []

    def hold(rule: str, summary: str, value: str, subject: str = "") -> None:
        key = f"{rule}:{subject}" if subject else rule
        found.append(Firing(key, _BY_NAME[rule], summary, value, subject))

    for queue, count in sorted(facts.consumers.items()):
        if count == 0:
            hold("NoConsumerOnQueue", f"No live worker consumes {queue}", "0 consumers", queue)
    if facts.schedulers_live == 0:
        hold("SchedulerSilent", "No scheduler is running", "0 live schedulers")
    elif facts.scheduler_age_s is not None and facts.scheduler_age_s > limits.scheduler_silent_s:
        age = seconds_text(facts.scheduler_age_s)
        hold("SchedulerSilent", f"The scheduler has not beaten for {age}", f"last beat {age} ago")
    if not facts.broker_up:
        hold("BrokerDown", "The broker does not answer", "unreachable")
    if facts.oldest_queued_age_s > limits.oldest_queued_s:
        age = seconds_text(facts.oldest_queued_age_s)
        hold("OldestQueuedRunOld", f"A queued run has waited {age} for a worker", f"{age}")
    if len(facts.lateness_s) >= MIN_SAMPLES:
        p99 = quantile(facts.lateness_s, 0.99)
        if p99 > limits.lateness_p99_s:
            late = seconds_text(p99)
            hold("LatenessP99High", f"Runs start late: p99 lateness {late}", f"p99 {late}")
    if facts.finished >= MIN_OUTCOMES and facts.failed / facts.finished > limits.failure_ratio:
        share = f"{facts.failed / facts.finished:.0%}"
        hold(
            "FailureRatioHigh",
            f"{share} of finished runs failed",
            f"{facts.failed} of {facts.finished} runs",
        )
    if (
        facts.attempts >= MIN_ATTEMPTS
        and facts.attempt_errors / facts.attempts > limits.agent_error_ratio
    ):
        share = f"{facts.attempt_errors / facts.attempts:.0%}"
        hold(
            "AgentErrorBurst",
            f"{share} of run attempts fail",
            f"{facts.attempt_errors} of {facts.attempts} attempts",
        )
    for queue, age_s in sorted(facts.oldest_message_age_s.items()):
        if age_s > limits.queue_backlog_s:
            age = seconds_text(age_s)
            hold("QueueBacklog", f"{queue} is behind: oldest message {age}", age, queue)
    if facts.tasks_overdue > 0:
        hold(
            "TasksOverdue",
            f"{facts.tasks_overdue} active task(s) overdue",
            str(facts.tasks_overdue),
        )
    if facts.channels_broken > 0:
        count = facts.channels_broken
        hold("ChannelBroken", f"{count} notification channel(s) broken", str(count))
    return {f.key: f for f in found}


def rule_named(name: str) -> Rule:
    return _BY_NAME[name]


def seconds_text(value: float) -> str:
    """``42 s``, ``7.5 min``, ``2.0 h``."""
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"
