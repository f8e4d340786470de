"""``notifications``: the outbox; in-app ones are read from here.

A run's notification is unique per (run, channel); one that belongs to no run (a daily digest)
is unique per (user, channel, ``dedupe_key``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.clock import utcnow
from personal_assistant.core.states import NotificationStatus
from personal_assistant.database.models.base import Base, one_of
from personal_assistant.database.types import BigId


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("run_id", "channel"),
        UniqueConstraint("user_id", "channel", "dedupe_key"),
        one_of("status", NotificationStatus),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        # The delivery sweep: pending rows whose next attempt is due.
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("task_runs.id", ondelete="CASCADE")
    )
    task_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ai_tasks.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    #: What makes a notification of no run unique, e.g. ``digest:2026-11-29``.
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    delivered_at: Mapped[datetime | None]
    #: A pending row leased for a send: when that send began (NULL: no send under way).
    sending_since: Mapped[datetime | None]
    read_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"Notification(id={self.id!r}, channel={self.channel!r}, status={self.status!r})"
