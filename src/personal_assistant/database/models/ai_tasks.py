"""``ai_tasks``: what a person asked for, and when it fires next."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.clock import utcnow
from personal_assistant.core.states import CatchUp, TaskStatus, TaskType
from personal_assistant.database.models.base import Base, one_of
from personal_assistant.database.types import BigId


class AITask(Base):
    __tablename__ = "ai_tasks"
    __table_args__ = (
        one_of("status", TaskStatus),
        one_of("task_type", TaskType),
        one_of("catch_up", CatchUp),
        # The scheduler's claim: WHERE status = 'active' AND next_run_at <= now
        # AND (next_run_at, id) > (the last task read) ORDER BY next_run_at, id
        Index("ix_ai_tasks_status_next_run_at_id", "status", "next_run_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    task_type: Mapped[str] = mapped_column(String(32), default="reminder")
    schedule_kind: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[dict[str, Any]]
    timezone: Mapped[str] = mapped_column(String(64))
    next_run_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    ai_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notification_channels: Mapped[list[str]] = mapped_column(default=lambda: ["in_app"])
    catch_up: Mapped[str] = mapped_column(String(8), default="once")
    max_retries: Mapped[int] = mapped_column(default=3)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp(), onupdate=utcnow
    )

    def __repr__(self) -> str:
        return f"AITask(id={self.id!r}, title={self.title!r}, status={self.status!r})"
