"""Logging for the processes: one event per line, to stderr and to ``logs/core.log``.

Messages are ``event=<name> key=value ...`` so a run can be followed across processes by its
``run_id``. Called by the entry points (worker, beat, ``pa run``), never at import.
``LOG_FORMAT=json`` writes each record as one JSON object a line instead
(:mod:`personal_assistant.logformat`), the event's keys as fields.

Every handler set up here, and every handler Celery adds (see :func:`protect`), carries a
:class:`~personal_assistant.redaction.RedactingFilter`: no URL password, feed token or channel
secret reaches a log line, whichever library logged it. The log directory and files are created
readable by their owner only (:mod:`personal_assistant.private_files`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from personal_assistant import redaction
from personal_assistant.logformat import JsonFormatter
from personal_assistant.private_files import private_dir, private_file

if TYPE_CHECKING:
    from personal_assistant.config import Settings

FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(name)s %(message)s"
CORE_LOG = "core.log"


def add_core_log(settings: Settings, logger: logging.Logger | None = None) -> Path:
    """Add ``logs/core.log`` to ``logger`` (the root by default) once; returns its path.

    Every handler of ``logger``, the new one and those already there, redacts (:func:`protect`).
    """
    target = logger or logging.getLogger()
    path = settings.log_dir / CORE_LOG
    if not any(
        getattr(handler, "_pa_handler", False) and isinstance(handler, logging.FileHandler)
        for handler in target.handlers
    ):
        handler = logging.FileHandler(private_file(path), encoding="utf-8")
        handler.setFormatter(formatter(settings))
        handler._pa_handler = True  # type: ignore[attr-defined]  # marks our own handlers
        target.addHandler(handler)
    protect(target)
    return path


def formatter(settings: Settings) -> logging.Formatter:
    """The lines' format: :data:`FORMAT` text, or JSON when ``LOG_FORMAT=json``.

    Either way the handler's redacting filter has rewritten the record before it is formatted.
    """
    if settings.log_format == "json":
        return JsonFormatter()
    return logging.Formatter(FORMAT)


def protect(logger: logging.Logger) -> None:
    """Redact every record ``logger``'s handlers write (idempotent).

    For handlers others add: Celery's own on the root logger (a worker started by ``celery``)
    and on ``celery.task``, protected from its ``after_setup_*logger`` signals.
    """
    for handler in logger.handlers:
        redaction.install(handler)


def configure(settings: Settings, *, stderr: bool = True) -> Path:
    """Install the handlers on the root logger; returns the core log's path."""
    path = private_file(private_dir(settings.log_dir) / CORE_LOG)
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    line_format = formatter(settings)
    for handler in list(root.handlers):  # the entry point owns the process's logging
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if stderr:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(line_format)
        handler._pa_handler = True  # type: ignore[attr-defined]  # marks our own handlers
        redaction.install(handler)
        root.addHandler(handler)
    # Third-party chatter that would bury our events at INFO.
    for noisy in ("sqlalchemy.engine", "httpx", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("PA_LOG_FILE", str(path))
    return path
