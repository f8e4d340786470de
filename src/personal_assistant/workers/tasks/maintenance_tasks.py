"""Maintenance on the ``maintenance_tasks`` queue: the reaper."""

from __future__ import annotations

from personal_assistant.database.types import utcnow
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import publish_notifications, run_publisher
from personal_assistant.workers.runtime import runtime


@app.task(name="personal_assistant.workers.tasks.maintenance_tasks.reap_expired_runs")
def reap_expired_runs() -> dict[str, int]:
    """Recover runs nobody is working on, so that nothing is ever lost.

    A running run whose lease expired (its worker died) is retried or, out of retries, failed
    honestly; a queued run whose message never started it (lost, flushed, killed) is sent
    again; so is a pending notification whose delivery is due (lost message, transient
    failure).
    """
    settings = app.pa_settings
    services = runtime.services(settings)
    reaped, pending = runtime.run(services.processor.reap())
    publish_notifications(app, pending)
    owed_notifications = runtime.run(services.notifications.due(utcnow()))
    publish_notifications(app, owed_notifications)
    publish = run_publisher(app, per_message=settings.runs_per_message)
    scheduler = runtime.scheduler(settings, publish)
    resent = runtime.run(scheduler.dispatch_owed(utcnow()))
    return {"reaped": reaped, "resent": resent, "notifications_resent": len(owed_notifications)}
