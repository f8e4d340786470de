"""Tasks of the ``file_tasks`` queue: a user's data export, and cleanup of expired exports.

Thin shells around :mod:`personal_assistant.exports`; the export directory
is ``EXPORT_DIR`` (``var/exports`` by default) and exports expire after ``EXPORT_TTL_HOURS``.
"""

from __future__ import annotations

from personal_assistant.exports import document, files, store
from personal_assistant.workers.celery_app import app
from personal_assistant.workers.runtime import runtime
from personal_assistant.workers.task_names import TaskName


@app.task(name=TaskName.EXPORT_USER_DATA)
def export_user_data(user_id: int, fmt: str = "json") -> dict[str, object]:
    """Write the user's export (``json``, or ``csv`` as a zip) under the export directory."""
    settings = app.pa_settings
    engine = runtime.bulk_engine(settings)  # on the bulk loop: never ahead of a run (runtime)
    export_dir = files.settings_export_dir(settings)
    now = runtime.now(settings)
    done = runtime.run_bulk(
        store.export_user(
            engine,
            user_id,
            export_dir,
            fmt=document.export_format(fmt),
            now=now,
        )
    )
    return {
        "user_id": user_id,
        "format": fmt,
        "path": str(done.path),
        "tasks": done.tasks,
        "runs": done.runs,
        "notifications": done.notifications,
    }


@app.task(name=TaskName.CLEANUP_EXPORTS, ignore_result=True)
def cleanup_exports() -> dict[str, int]:
    """Delete exports older than their time to live."""
    settings = app.pa_settings
    deleted = files.cleanup_exports(
        files.settings_export_dir(settings),
        now=runtime.now(app.pa_settings),
        ttl=files.settings_export_ttl(settings),
    )
    return {"deleted": deleted}
