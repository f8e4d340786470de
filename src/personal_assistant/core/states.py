"""The enumerated values of the rows (pure): task statuses, run states, notification, channel,
feed and alert statuses, channel kinds, process roles. The models' CHECK constraints are built
from these (``database.models.base.one_of``)."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskType(StrEnum):
    REMINDER = "reminder"
    AUTOMATED_TASK = "automated_task"
    PERIODIC_TASK = "periodic_task"


class CatchUp(StrEnum):
    SKIP = "skip"
    ONCE = "once"
    ALL = "all"


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_RUN_STATES


class NotificationStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ChannelStatus(StrEnum):
    ACTIVE = "active"
    BROKEN = "broken"


class ChannelKind(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    CHAT = "chat"


class FeedStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


FINAL_RUN_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.SKIPPED, RunState.CANCELLED}
)

#: Runs that are owed work: a dispatcher or the reaper looks at their lease.
OPEN_RUN_STATES = (RunState.QUEUED, RunState.RETRYING, RunState.RUNNING)


class AlertStatus(StrEnum):
    """An alert episode (``alerts.status``): held but not yet told, told, told it cleared."""

    PENDING = "pending"
    OPEN = "open"
    RESOLVED = "resolved"


class ProcessRole(StrEnum):
    """What a process that beats in ``worker_heartbeats`` does."""

    WORKER = "worker"
    SCHEDULER = "scheduler"
