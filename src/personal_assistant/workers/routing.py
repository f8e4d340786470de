"""The routing table: the one place that says which task goes to which queue.

The worker's default ``-Q`` list, the declared queues and the docs are derived from it, so a
route to a queue that nobody consumes cannot be written (``task_create_missing_queues`` is off).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from personal_assistant.workers.task_names import TaskName, short_name

QUEUES: tuple[str, ...] = (
    "ai_tasks",
    "email_tasks",
    "file_tasks",
    "sync_tasks",
    "maintenance_tasks",
)


@dataclass(frozen=True)
class Route:
    """One task: its queue, what it does and what sends it (the last two are for the docs)."""

    task: str
    queue: str
    does: str
    sent_by: str


#: The routing table. Celery's ``task_routes``, the worker's default ``-Q`` and the table of
#: ``docs/reference-queues.md`` (``make docs``) all derive from it.
TABLE: tuple[Route, ...] = (
    Route(
        TaskName.EXECUTE_AI_TASK,
        "ai_tasks",
        "Claims runs, calls the agent for each, stores the outcomes and the notifications.",
        "the scheduler (due firings; runs queued by `pa task run` or due for a retry), "
        "the reaper (owed runs)",
    ),
    Route(
        TaskName.PROCESS_DUE_AI_TASKS,
        "ai_tasks",
        "One scheduler step: claims due tasks, records their runs, sends owed runs.",
        "anything that wants a step through the broker (beat runs the step in-process)",
    ),
    Route(
        TaskName.DELIVER_NOTIFICATIONS,
        "email_tasks",
        "Delivers pending notifications through the owner's channels (Apprise).",
        "workers after each batch of runs, the reaper (retries that are due)",
    ),
    Route(
        TaskName.SEND_DAILY_DIGESTS,
        "email_tasks",
        "Writes and delivers the daily digests that are due.",
        "beat, every minute",
    ),
    Route(
        TaskName.EXPORT_USER_DATA,
        "file_tasks",
        "Writes a user's tasks, runs and notifications as JSON or CSV.",
        "on demand (`pa export` writes in-process)",
    ),
    Route(
        TaskName.CLEANUP_EXPORTS,
        "file_tasks",
        "Deletes exports older than `EXPORT_TTL_HOURS`.",
        "beat, hourly",
    ),
    Route(
        TaskName.SYNC_CALENDARS,
        "sync_tasks",
        "Claims the calendar feeds due for a sync and sends one `sync_calendar` each.",
        "beat, every minute",
    ),
    Route(
        TaskName.SYNC_CALENDAR,
        "sync_tasks",
        "Fetches one calendar feed and brings its events and reminders up to date.",
        "`sync_calendars` (`pa calendar sync` syncs in-process)",
    ),
    Route(
        TaskName.REAP_EXPIRED_RUNS,
        "maintenance_tasks",
        "Retries or fails runs whose worker died; re-sends notifications that are due.",
        "beat, every `REAPER_INTERVAL`",
    ),
    Route(
        TaskName.PURGE_OLD_RUNS,
        "maintenance_tasks",
        "Deletes finished runs older than `RETENTION_DAYS`, with their notifications.",
        "beat, hourly",
    ),
    Route(
        TaskName.EVALUATE_ALERTS,
        "maintenance_tasks",
        "Checks the alert rules from the database and the broker; tells the admin users when "
        "an alert opens or resolves.",
        "beat, every `ALERT_INTERVAL_SECONDS` (0: never)",
    ),
    Route(
        "celery.backend_cleanup",
        "maintenance_tasks",
        "Expires old Celery results in a result backend that does not expire them itself "
        "(the embedded SQLite one; Redis results expire after `result_expires`, 1 h).",
        "beat, daily at 04:00 UTC, only for such a backend",
    ),
)

#: task name -> queue
ROUTES = MappingProxyType({route.task: route.queue for route in TABLE})


def queue_for(task_name: str) -> str:
    return ROUTES[task_name]


def routed_queues() -> tuple[str, ...]:
    """The queues some route sends to: what a worker must consume, in table order."""
    used = set(ROUTES.values())
    return tuple(q for q in QUEUES if q in used)


def worker_queues() -> str:
    """The worker's default ``-Q``: every declared queue (each routed one among them)."""
    assert set(routed_queues()) <= set(QUEUES)
    return ",".join(QUEUES)


def tasks_by_queue() -> dict[str, list[str]]:
    table: dict[str, list[str]] = {q: [] for q in QUEUES}
    for task, queue in ROUTES.items():
        table[queue].append(task)
    return table


def markdown_table() -> str:
    """The routing table as Markdown, queue by queue (what ``make docs`` writes)."""
    lines = ["| queue | task | what it does | sent by |", "|---|---|---|---|"]
    for queue in QUEUES:
        for route in (r for r in TABLE if r.queue == queue):
            lines.append(
                f"| `{queue}` | `{short_name(route.task)}` | {route.does} | {route.sent_by} |"
            )
    return "\n".join(lines)
