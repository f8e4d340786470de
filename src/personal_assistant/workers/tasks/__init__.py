"""Celery task modules, one per queue."""

# A worker imports its task modules at start: this connects its presence and metrics signals.
from personal_assistant.workers import metrics as _metrics  # noqa: F401
from personal_assistant.workers import presence as _presence  # noqa: F401
