"""Maintenance on the ``maintenance_tasks`` queue: the reaper, retention and the alerts."""

from __future__ import annotations

import logging
from datetime import timedelta

from personal_assistant.runs import retention
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import publish_notifications
from personal_assistant.workers.runtime import runtime
from personal_assistant.workers.task_names import TaskName


@app.task(name=TaskName.REAP_EXPIRED_RUNS)
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
    owed_notifications = runtime.run(services.notifications.due(runtime.now(app.pa_settings)))
    publish_notifications(app, owed_notifications)
    scheduler = runtime.scheduler(app, settings)
    resent = runtime.run(scheduler.dispatch_owed(runtime.now(app.pa_settings)))
    return {"reaped": reaped, "resent": resent, "notifications_resent": len(owed_notifications)}


log = logging.getLogger(__name__)

#: Batches per call: a large backlog is worked off over several beat periods.
PURGE_MAX_BATCHES = 100


@app.task(name=TaskName.PURGE_OLD_RUNS, ignore_result=True)
def purge_old_runs() -> dict[str, int]:
    """Delete finished runs older than ``RETENTION_DAYS``, with their notifications.

    ``RETENTION_DAYS=0`` keeps everything. Open runs are never deleted.
    """
    settings = app.pa_settings
    if settings.retention_days == 0:
        return {"runs": 0, "notifications": 0, "batches": 0}
    purged = runtime.run(
        retention.purge(
            runtime.services(settings).engine,
            now=runtime.now(app.pa_settings),
            retention=timedelta(days=settings.retention_days),
            batch_size=settings.retention_batch,
            max_batches=PURGE_MAX_BATCHES,
        )
    )
    log.info(
        "event=runs_purged runs=%s notifications=%s batches=%s complete=%s",
        purged.runs,
        purged.notifications,
        purged.batches,
        purged.complete,
    )
    return {"runs": purged.runs, "notifications": purged.notifications, "batches": purged.batches}


@app.task(name=TaskName.EVALUATE_ALERTS, ignore_result=True)
def evaluate_alerts() -> dict[str, int]:
    """Check the alert rules and tell the admins of each alert that opens or resolves
    (:mod:`personal_assistant.alerts`)."""
    from personal_assistant.workers.alerting import evaluate_now

    settings = app.pa_settings
    services = runtime.services(settings)
    done = runtime.run(evaluate_now(settings, services.engine, runtime.now(settings), app))
    publish_notifications(app, done.pending)
    return {"firing": len(done.firing), "opened": len(done.opened), "resolved": len(done.resolved)}
