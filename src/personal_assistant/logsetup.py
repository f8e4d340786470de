"""Logging for the processes: one event per line, to stderr and to ``logs/core.log``.

Messages are ``event=<name> key=value ...`` so a run can be followed across processes by its
``run_id``. Called by the entry points (worker, beat, ``pa run``), never at import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from personal_assistant.config import Settings

FORMAT = "%(asctime)s %(levelname)s pid=%(process)d %(name)s %(message)s"
CORE_LOG = "core.log"


def add_core_log(settings: Settings, logger: logging.Logger | None = None) -> Path:
    """Add ``logs/core.log`` to ``logger`` (the root by default) once; returns its path."""
    target = logger or logging.getLogger()
    path = settings.log_dir / CORE_LOG
    for handler in target.handlers:
        if getattr(handler, "_pa_handler", False) and isinstance(handler, logging.FileHandler):
            return path
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler._pa_handler = True  # type: ignore[attr-defined]  # marks our own handlers
    target.addHandler(handler)
    return path


def configure(settings: Settings, *, stderr: bool = True) -> Path:
    """Install the handlers on the root logger; returns the core log's path."""
    log_dir = settings.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / CORE_LOG
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    formatter = logging.Formatter(FORMAT)
    for handler in list(root.handlers):  # the entry point owns the process's logging
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if stderr:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._pa_handler = True  # type: ignore[attr-defined]  # marks our own handlers
        root.addHandler(handler)
    # Third-party chatter that would bury our events at INFO.
    for noisy in ("sqlalchemy.engine", "httpx", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("PA_LOG_FILE", str(path))
    return path
