"""AI task definitions on the ``ai_tasks`` queue.

Thin shells: the work is in :mod:`personal_assistant.runs`, run on this process's event loop
(:mod:`personal_assistant.workers.runtime`).
"""

from __future__ import annotations

from personal_assistant.workers.celery_app import app
from personal_assistant.workers.dispatch import publish_notifications
from personal_assistant.workers.runtime import runtime
from personal_assistant.workers.task_names import TaskName


@app.task(name=TaskName.PROCESS_DUE_AI_TASKS)
def process_due_ai_tasks() -> dict[str, float]:
    """One scheduler step: claim due tasks, record their runs, dispatch owed runs.

    Beat calls the same step in-process every tick (``DatabaseScheduler``); this task lets
    anything else trigger it through the broker.
    """
    settings = app.pa_settings
    scheduler = runtime.scheduler(app, settings)
    delay = runtime.run(scheduler.tick(runtime.now(app.pa_settings)))
    return {"seconds_until_next": delay}


@app.task(name=TaskName.EXECUTE_AI_TASK, ignore_result=True)
def execute_ai_task(run_ids: int | list[int]) -> dict[str, int]:
    """Execute runs: claim each (compare-and-set), call the agent, store the result, notify.

    Accepts one run id or a list. A run already claimed, finished or cancelled is left alone,
    so a second delivery of the same message does nothing.
    """
    ids = [run_ids] if isinstance(run_ids, int) else [int(i) for i in run_ids]
    services = runtime.services(app.pa_settings)
    report = runtime.run(services.processor.process(ids))
    publish_notifications(app, report.pending_notifications)
    return report.as_dict()
