"""The models; importing this package registers every table on ``Base.metadata``."""

from personal_assistant.database.models.ai_tasks import AITask
from personal_assistant.database.models.alerts import Alert
from personal_assistant.database.models.api_keys import ApiKey
from personal_assistant.database.models.base import Base
from personal_assistant.database.models.calendars import CalendarEvent, CalendarFeed
from personal_assistant.database.models.idempotency_keys import IdempotencyKey
from personal_assistant.database.models.notification_channels import NotificationChannel
from personal_assistant.database.models.notifications import Notification
from personal_assistant.database.models.task_imports import TaskImport
from personal_assistant.database.models.task_runs import TaskRun
from personal_assistant.database.models.users import User
from personal_assistant.database.models.worker_heartbeats import WorkerHeartbeat

__all__ = [
    "AITask",
    "Alert",
    "ApiKey",
    "Base",
    "CalendarEvent",
    "CalendarFeed",
    "IdempotencyKey",
    "Notification",
    "NotificationChannel",
    "TaskImport",
    "TaskRun",
    "User",
    "WorkerHeartbeat",
]
