"""``calendar_feeds`` and ``calendar_events``: iCalendar subscriptions and their occurrences.

A feed is fetched every ``interval_minutes``; each occurrence of an event inside the next
``horizon_days`` is one ``calendar_events`` row, keyed by the event's UID and the occurrence's
original start (``occurrence_key``: empty for a single event), with the reminder AI task it owns.
The URL may hold a secret token (private calendar links do): it is shown only masked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.clock import utcnow
from personal_assistant.core.states import FeedStatus
from personal_assistant.database.models.base import Base, one_of
from personal_assistant.database.types import BigId


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"
    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        one_of("status", FeedStatus),
        CheckConstraint("lead_minutes >= 0 AND lead_minutes <= 10080", name="lead_minutes"),
        CheckConstraint("horizon_days >= 1 AND horizon_days <= 366", name="horizon_days"),
        CheckConstraint("interval_minutes >= 1", name="interval_minutes"),
        # The sync sweep: WHERE status = 'active' AND next_sync_at <= now
        Index("ix_calendar_feeds_status_next_sync_at", "status", "next_sync_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(48))
    url: Mapped[str] = mapped_column(Text)
    lead_minutes: Mapped[int] = mapped_column(default=15)
    horizon_days: Mapped[int] = mapped_column(default=30)
    interval_minutes: Mapped[int] = mapped_column(default=60)
    #: Where the reminders notify (the owner's channel names, ``in_app`` always valid).
    channels: Mapped[list[str]] = mapped_column(default=lambda: ["in_app"])
    status: Mapped[str] = mapped_column(String(16), default="active")
    next_sync_at: Mapped[datetime | None]
    last_synced_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    #: HTTP validators of the last fetch, for a conditional GET.
    etag: Mapped[str | None] = mapped_column(String(256))
    last_modified: Mapped[str | None] = mapped_column(String(64))
    #: sha256 of the body last refused for its content (and of what the refusal depended on).
    refused_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )

    def __repr__(self) -> str:
        return f"CalendarFeed(id={self.id!r}, name={self.name!r}, status={self.status!r})"


class CalendarEvent(Base):
    __tablename__ = "calendar_events"
    __table_args__ = (UniqueConstraint("feed_id", "uid", "occurrence_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    feed_id: Mapped[int] = mapped_column(BigId, ForeignKey("calendar_feeds.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(512))
    #: The occurrence's original start (UTC ISO 8601) for a recurring event, else ``""``.
    occurrence_key: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    all_day: Mapped[bool] = mapped_column(default=False)
    #: A hash of what the reminder is made from: an unchanged event is not rewritten.
    fingerprint: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ai_tasks.id", ondelete="SET NULL"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )

    def __repr__(self) -> str:
        return f"CalendarEvent(id={self.id!r}, uid={self.uid!r}, starts_at={self.starts_at!r})"
