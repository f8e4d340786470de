"""Every metric the package publishes, declared once (pure: no prometheus_client here).

The names follow Prometheus's conventions: a ``pa_`` namespace, base units in the name
(``_seconds``), ``_total`` on counters, and labels whose values come from small fixed sets
(a run's outcome, a task type, a queue, a channel kind), never a user id, a task title or a
reply's text. ``deploy/prometheus/alerts.yml`` and ``deploy/grafana/personal-assistant.json``
are built on these names; ``tests/unit/test_metrics_catalogue.py`` keeps them to the rules.

Two kinds of source:

* ``PROCESS`` metrics are counted where the thing happens, in each worker and scheduler process
  (under Celery's prefork pool, summed over its children by prometheus_client's multiprocess
  mode), and served on that process's ``/metrics`` (``METRICS_PORT``).
* ``DEPLOYMENT`` metrics are read from the database and the broker, once per deployment, by
  ``pa metrics serve``: they would be counted N times over if every process published them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Source(StrEnum):
    PROCESS = "process"
    DEPLOYMENT = "deployment"


#: Seconds, fine below 100 ms so that a p99 of 100 ms or less is visible, then up to minutes.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    source: Source = Source.PROCESS
    buckets: tuple[float, ...] = ()
    #: For a process gauge under prefork: how the children's values combine (prometheus_client's
    #: ``multiprocess_mode``): ``livesum`` adds the live processes' values, ``livemax`` takes
    #: the largest.
    combine: Literal["livesum", "livemax"] = "livesum"


#: Label values that are not free text: each label's whole set, where it is closed.
OUTCOMES = ("succeeded", "retrying", "failed", "stale", "deferred")
AGENT_ERRORS = ("timeout", "rate_limited", "permanent", "transient", "crashed")
NOTIFICATION_RESULTS = ("delivered", "retrying", "failed")
REAPER_ACTIONS = ("retried", "failed")
SYNC_RESULTS = ("synced", "refused", "failed")

RUNS_FINISHED = Metric(
    "pa_runs_finished_total",
    Kind.COUNTER,
    "Run attempts whose outcome was stored, by outcome and task type.",
    ("outcome", "task_type"),
)
RUN_DURATION = Metric(
    "pa_run_duration_seconds",
    Kind.HISTOGRAM,
    "Time from a run's claim by a worker to its stored outcome.",
    ("task_type",),
    buckets=LATENCY_BUCKETS,
)
RUN_LATENESS = Metric(
    "pa_run_lateness_seconds",
    Kind.HISTOGRAM,
    "Time from a run's scheduled instant to its claim by a worker (first attempts).",
    buckets=LATENCY_BUCKETS,
)
RUNS_IN_FLIGHT = Metric(
    "pa_runs_in_flight",
    Kind.GAUGE,
    "Runs claimed and not yet finished in the worker processes.",
)
RUNS_IN_FLIGHT_LIMIT = Metric(
    "pa_runs_in_flight_limit",
    Kind.GAUGE,
    "The most runs one worker process holds at once (MAX_IN_FLIGHT).",
    combine="livemax",
)
AGENT_CALL = Metric(
    "pa_agent_call_seconds",
    Kind.HISTOGRAM,
    "Time of one call to the agent, answered or not, by agent kind.",
    ("agent",),
    buckets=LATENCY_BUCKETS,
)
AGENT_ERRORS_TOTAL = Metric(
    "pa_agent_errors_total",
    Kind.COUNTER,
    "Agent calls that gave no answer, by agent kind and class of error.",
    ("agent", "error"),
)
AGENT_TOKENS = Metric(
    "pa_agent_tokens_total",
    Kind.COUNTER,
    "Tokens the agent reported, by configured model and direction (prompt, completion).",
    ("model", "direction"),
)
RATE_LIMIT_WAITS = Metric(
    "pa_rate_limit_waits_total",
    Kind.COUNTER,
    "Agent calls held back by a rate limit (the run is deferred, no attempt spent).",
)
SCHEDULER_TICK = Metric(
    "pa_scheduler_tick_seconds",
    Kind.HISTOGRAM,
    "Time of one scheduler tick: claim the due tasks, create their runs, send them.",
    buckets=LATENCY_BUCKETS,
)
SCHEDULER_CLAIMED = Metric(
    "pa_scheduler_runs_created_total",
    Kind.COUNTER,
    "Runs the scheduler created for due tasks.",
)
SCHEDULER_SKIPPED = Metric(
    "pa_scheduler_firings_skipped_total",
    Kind.COUNTER,
    "Firings missed past MISFIRE_GRACE that the task's catch-up policy skipped.",
)
REAPER_ACTIONS_TOTAL = Metric(
    "pa_reaper_actions_total",
    Kind.COUNTER,
    "Runs whose lease ended, by what the reaper did (retried, failed).",
    ("action",),
)
NOTIFICATIONS = Metric(
    "pa_notifications_total",
    Kind.COUNTER,
    "Notification delivery attempts, by channel kind and result.",
    ("channel", "result"),
)
CALENDAR_SYNCS = Metric(
    "pa_calendar_syncs_total",
    Kind.COUNTER,
    "Calendar feed syncs, by result (synced, refused: the feed broke a bound, failed).",
    ("result",),
)

BROKER_UP = Metric(
    "pa_broker_up",
    Kind.GAUGE,
    "Whether the broker answered the exporter's last reading (1) or not (0).",
    (),
    Source.DEPLOYMENT,
)
QUEUE_DEPTH = Metric(
    "pa_queue_depth",
    Kind.GAUGE,
    "Messages waiting in each broker queue.",
    ("queue",),
    Source.DEPLOYMENT,
)
QUEUE_OLDEST_AGE = Metric(
    "pa_queue_oldest_message_age_seconds",
    Kind.GAUGE,
    "Age of the oldest message waiting in each queue (Redis broker).",
    ("queue",),
    Source.DEPLOYMENT,
)
QUEUE_CONSUMERS = Metric(
    "pa_queue_consumers",
    Kind.GAUGE,
    "Live worker processes consuming each queue (from their heartbeats).",
    ("queue",),
    Source.DEPLOYMENT,
)
PROCESSES_LIVE = Metric(
    "pa_processes_live",
    Kind.GAUGE,
    "Worker and scheduler processes whose heartbeat is fresh, by role.",
    ("role",),
    Source.DEPLOYMENT,
)
SCHEDULER_LAST_BEAT_AGE = Metric(
    "pa_scheduler_heartbeat_age_seconds",
    Kind.GAUGE,
    "Seconds since the freshest scheduler heartbeat (left out when none was ever seen).",
    (),
    Source.DEPLOYMENT,
)
TASKS_OVERDUE = Metric(
    "pa_tasks_overdue",
    Kind.GAUGE,
    "Active tasks whose next firing is past by more than the overdue bound.",
    (),
    Source.DEPLOYMENT,
)
RUN_QUEUED_OLDEST_AGE = Metric(
    "pa_run_queued_oldest_age_seconds",
    Kind.GAUGE,
    "Age of the oldest run waiting for a worker (queued), 0 when none waits.",
    (),
    Source.DEPLOYMENT,
)
CHANNELS_BROKEN = Metric(
    "pa_channels_broken",
    Kind.GAUGE,
    "Notification channels disabled by a permanent delivery error.",
    (),
    Source.DEPLOYMENT,
)

ALL: tuple[Metric, ...] = (
    RUNS_FINISHED,
    RUN_DURATION,
    RUN_LATENESS,
    RUNS_IN_FLIGHT,
    RUNS_IN_FLIGHT_LIMIT,
    AGENT_CALL,
    AGENT_ERRORS_TOTAL,
    AGENT_TOKENS,
    RATE_LIMIT_WAITS,
    SCHEDULER_TICK,
    SCHEDULER_CLAIMED,
    SCHEDULER_SKIPPED,
    REAPER_ACTIONS_TOTAL,
    NOTIFICATIONS,
    CALENDAR_SYNCS,
    BROKER_UP,
    QUEUE_DEPTH,
    QUEUE_OLDEST_AGE,
    QUEUE_CONSUMERS,
    PROCESSES_LIVE,
    SCHEDULER_LAST_BEAT_AGE,
    TASKS_OVERDUE,
    RUN_QUEUED_OLDEST_AGE,
    CHANNELS_BROKEN,
)
