"""Notification delivery on the ``email_tasks`` queue."""

from __future__ import annotations

from personal_assistant.database.types import utcnow
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.runtime import runtime


@app.task(
    name="personal_assistant.workers.tasks.email_tasks.deliver_notifications", ignore_result=True
)
def deliver_notifications(notification_ids: list[int]) -> dict[str, int]:
    """Deliver pending notifications; delivered ones are never sent again."""
    services = runtime.services(app.pa_settings)
    report = runtime.run(services.notifications.deliver(notification_ids, utcnow()))
    return {
        "delivered": report.delivered,
        "failed": report.failed,
        "retry": report.retry,
        "deferred": report.deferred,
    }
