"""A bare Celery app with one no-op task, configured exactly like the project's app.

The baseline of the end-to-end figure: the same ``celery_config(settings)`` (broker, Redis
result backend, prefetch 1, ``acks_late``, the threads pool and its concurrency, queues), only
the task does nothing and no project task module is included. The worker runs it with
``celery -A benchmarks.noop_app worker -Q ai_tasks``; settings are read from the environment
when Celery first needs them (or given with ``app.use_settings``), never at import.
"""

from __future__ import annotations

from personal_assistant.workers.celery_app import PersonalAssistantCelery

NOOP = "benchmarks.noop_app.noop"
QUEUE = "ai_tasks"  # the config's default queue: the noop task has no route


#: Configured like the project's app (``celery_config(settings)``), with no task module.
app = PersonalAssistantCelery("bench_noop", task_modules=())


@app.task(name=NOOP, shared=False)
def noop() -> None:
    """Does nothing: what is measured is Celery's own cost per task."""
    return None
