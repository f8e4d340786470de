"""``notification_channels``: a user's named delivery channels, each an Apprise URL.

The URL holds secrets (passwords, tokens) and is stored sealed (``url_sealed``, a Fernet token,
see :mod:`personal_assistant.channel_keys`); only the transport that sends through it opens it.
``url_masked`` is its masked form
(:func:`~personal_assistant.notifications.channels.mask_apprise_url`), stored beside it so
that listing channels and telling a user which one broke need no key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.clock import utcnow
from personal_assistant.core.states import ChannelKind, ChannelStatus
from personal_assistant.database.models.base import Base, one_of
from personal_assistant.database.types import BigId


class NotificationChannel(Base):
    __tablename__ = "notification_channels"
    __table_args__ = (
        UniqueConstraint("user_id", "name"),
        one_of("status", ChannelStatus),
        one_of("kind", ChannelKind),
        CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(16))
    url_sealed: Mapped[str] = mapped_column(Text)
    url_masked: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    broken_reason: Mapped[str | None] = mapped_column(Text)
    daily_cap: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )

    def __repr__(self) -> str:
        return (
            f"NotificationChannel(id={self.id!r}, name={self.name!r}, kind={self.kind!r}, "
            f"url={self.url_masked!r}, status={self.status!r})"
        )
