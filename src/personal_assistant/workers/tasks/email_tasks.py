"""Notification delivery and daily digests on the ``email_tasks`` queue."""

from __future__ import annotations

from personal_assistant.digests import sweep as digest_service
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import chunks, publish_notifications
from personal_assistant.workers.runtime import runtime
from personal_assistant.workers.task_names import TaskName

#: Digests per ``deliver_notifications`` message: many users' digests go out in parallel.
DIGESTS_PER_MESSAGE = 20


@app.task(name=TaskName.DELIVER_NOTIFICATIONS, ignore_result=True)
def deliver_notifications(notification_ids: list[int]) -> dict[str, int]:
    """Deliver pending notifications; delivered ones are never sent again."""
    services = runtime.services(app.pa_settings)
    report = runtime.run(services.notifications.deliver(notification_ids))
    return {
        "delivered": report.delivered,
        "failed": report.failed,
        "retry": report.retry,
        "deferred": report.deferred,
    }


@app.task(name=TaskName.SEND_DAILY_DIGESTS, ignore_result=True)
def send_daily_digests() -> dict[str, int]:
    """Write the daily digests that are due, then send them to ``deliver_notifications``.

    Beat sends this every minute. Sent twice, or by two beats, it writes each digest once.
    """
    services = runtime.services(app.pa_settings)
    sweep = runtime.run(
        digest_service.due_digests(
            services.engine,
            runtime.now(services.settings),
            stall_limit_s=services.settings.lease_margin_seconds,
        )
    )
    for ids in chunks(sweep.pending, DIGESTS_PER_MESSAGE):
        publish_notifications(app, ids)
    return {"users": sweep.users, "digests": sweep.written, "pending": len(sweep.pending)}
