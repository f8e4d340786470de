"""The routing table: the one place that says which task goes to which queue.

The worker's default ``-Q`` list, the declared queues and the docs are derived from it, so a
route to a queue that nobody consumes cannot be written (``task_create_missing_queues`` is off).
"""

from __future__ import annotations

from types import MappingProxyType

QUEUES: tuple[str, ...] = (
    "ai_tasks",
    "email_tasks",
    "file_tasks",
    "sync_tasks",
    "maintenance_tasks",
)

_TASKS = "personal_assistant.workers.tasks"

#: task name -> queue
ROUTES = MappingProxyType(
    {
        f"{_TASKS}.ai_tasks.process_due_ai_tasks": "ai_tasks",
        f"{_TASKS}.ai_tasks.execute_ai_task": "ai_tasks",
        f"{_TASKS}.email_tasks.deliver_notifications": "email_tasks",
        f"{_TASKS}.maintenance_tasks.reap_expired_runs": "maintenance_tasks",
        f"{_TASKS}.maintenance_tasks.purge_old_runs": "maintenance_tasks",
        f"{_TASKS}.file_tasks.export_user_data": "file_tasks",
        f"{_TASKS}.file_tasks.cleanup_exports": "file_tasks",
    }
)

TASK_MODULES: tuple[str, ...] = tuple(f"{_TASKS}.{queue}" for queue in QUEUES)


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
