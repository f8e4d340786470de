"""Tasks of the ``sync_tasks`` queue: calendar feeds turned into reminder tasks.

Thin shells around :mod:`personal_assistant.calendars.sync`. Beat sends
``sync_calendars`` every minute: it claims the feeds whose sync is due (leased, so another
sweep does not claim them too) and sends one ``sync_calendar`` per feed, so that slow feeds
are fetched in parallel, on any worker.
"""

from __future__ import annotations

import logging

from personal_assistant.calendars import fetch as calendar_fetch
from personal_assistant.calendars import sandbox as calendar_sandbox
from personal_assistant.calendars import store as calendar_store
from personal_assistant.calendars import sync as calendar_sync
from personal_assistant.clock import utcnow
from personal_assistant.errors import NotFoundError
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.runtime import runtime
from personal_assistant.workers.task_names import TaskName

log = logging.getLogger(__name__)

#: Feeds claimed per sweep; more wait for the next sweep (a minute later).
SWEEP_LIMIT = 500


@app.task(name=TaskName.SYNC_CALENDARS, ignore_result=True)
def sync_calendars() -> dict[str, int]:
    """Claim the feeds due for a sync and send a ``sync_calendar`` for each."""
    engine = runtime.services(app.pa_settings).engine
    due = runtime.run(calendar_store.due_feeds(engine, utcnow(), limit=SWEEP_LIMIT))
    for feed_id in due:
        sync_calendar.apply_async(args=(feed_id,))
    return {"due": len(due)}


@app.task(name=TaskName.SYNC_CALENDAR)
def sync_calendar(feed_id: int) -> dict[str, object]:
    """Sync one feed now: its events and reminders; a failure is recorded on the feed."""
    settings = app.pa_settings
    engine = runtime.bulk_engine(settings)  # on the bulk loop: never ahead of a run (runtime)
    try:
        report = runtime.run_bulk(
            calendar_sync.sync_feed(
                engine,
                feed_id,
                utcnow(),
                max_retries=settings.default_max_retries,
                fetch=calendar_fetch.fetcher(settings.outbound_policy),
                parse_limits=calendar_sandbox.Limits.from_settings(settings),
            )
        )
    except NotFoundError:  # removed since it was claimed
        log.info("event=calendar_sync_skipped feed_id=%s reason=removed", feed_id)
        return {"feed_id": feed_id, "removed": True}
    return report.as_dict()
