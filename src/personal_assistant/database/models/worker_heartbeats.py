"""``worker_heartbeats``: when each worker process that claims runs last said it was alive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.database.models.base import Base


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    # The id the worker writes on the runs it claims (``task_runs.worker_id``): ``host:pid``.
    worker_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"WorkerHeartbeat(worker_id={self.worker_id!r}, beat_at={self.beat_at!r})"
