"""Celery task modules, one per queue."""

# A worker imports its task modules at start: this connects its presence and metrics signals,
from personal_assistant.workers import metrics as _metrics  # noqa: F401
from personal_assistant.workers import presence as _presence  # noqa: F401

# isort: split
# then the freezing of its start-up objects, after presence's handler, which builds the runtime.
from personal_assistant.workers import gc_freeze as _gc_freeze  # noqa: F401
