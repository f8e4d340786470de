"""``worker_heartbeats``: when each worker and scheduler process last said it was alive, and
what it runs (its role, the queues it consumes, its code version and Celery settings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.core.states import ProcessRole
from personal_assistant.database.models.base import Base, one_of


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"
    __table_args__ = (one_of("role", ProcessRole),)

    # The id the worker writes on the runs it claims (``task_runs.worker_id``): ``host:pid``.
    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    role: Mapped[str] = mapped_column(String(20), default=ProcessRole.WORKER)
    # Comma-separated queues a worker's main process consumes (None: a pool child, or a
    # process that does not consume: beat).
    queues: Mapped[str | None] = mapped_column(String(500), default=None)
    version: Mapped[str | None] = mapped_column(String(40), default=None)
    # The Celery settings the process runs with that delivery depends on (pa doctor checks).
    config: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return (
            f"WorkerHeartbeat(worker_id={self.worker_id!r}, role={self.role!r}, "
            f"beat_at={self.beat_at!r})"
        )
