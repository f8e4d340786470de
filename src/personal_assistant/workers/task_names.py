"""The names of our Celery tasks: each written once, here.

A name is what a message carries (its ``task`` header) and what the docs and the logs show, so
it never changes. The task modules register their tasks under these names, and dispatch, the
routing table and beat send by them.
"""

from __future__ import annotations

from enum import StrEnum

#: The package of the task modules; every name starts with it.
PACKAGE = "personal_assistant.workers.tasks"


class TaskName(StrEnum):
    """One task's name, ``<PACKAGE>.<module>.<function>`` (the module is named for its queue)."""

    EXECUTE_AI_TASK = "personal_assistant.workers.tasks.ai_tasks.execute_ai_task"
    PROCESS_DUE_AI_TASKS = "personal_assistant.workers.tasks.ai_tasks.process_due_ai_tasks"
    DELIVER_NOTIFICATIONS = "personal_assistant.workers.tasks.email_tasks.deliver_notifications"
    SEND_DAILY_DIGESTS = "personal_assistant.workers.tasks.email_tasks.send_daily_digests"
    EXPORT_USER_DATA = "personal_assistant.workers.tasks.file_tasks.export_user_data"
    CLEANUP_EXPORTS = "personal_assistant.workers.tasks.file_tasks.cleanup_exports"
    SYNC_CALENDARS = "personal_assistant.workers.tasks.sync_tasks.sync_calendars"
    SYNC_CALENDAR = "personal_assistant.workers.tasks.sync_tasks.sync_calendar"
    REAP_EXPIRED_RUNS = "personal_assistant.workers.tasks.maintenance_tasks.reap_expired_runs"
    PURGE_OLD_RUNS = "personal_assistant.workers.tasks.maintenance_tasks.purge_old_runs"
    EVALUATE_ALERTS = "personal_assistant.workers.tasks.maintenance_tasks.evaluate_alerts"

    @property
    def module(self) -> str:
        """The module that defines the task."""
        return self.value.rpartition(".")[0]


#: The modules Celery imports to register every task, in the order of :class:`TaskName`.
TASK_MODULES: tuple[str, ...] = tuple(dict.fromkeys(name.module for name in TaskName))


def short_name(task: str) -> str:
    """``task`` without :data:`PACKAGE` (as the docs write it); Celery's own names stay whole."""
    return task.removeprefix(f"{PACKAGE}.")
