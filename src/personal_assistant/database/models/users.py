"""``users``: the people tasks belong to."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.clock import utcnow
from personal_assistant.database.models.base import Base
from personal_assistant.database.types import BigId


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: Quiet hours, wall-clock times in ``timezone``: notifications wait until they end.
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    #: The daily digest: a wall-clock time in ``timezone`` and the channel it goes to
    #: (``NULL`` time: no digest); ``next_digest_at`` is the next one, in UTC.
    digest_at: Mapped[time | None]
    digest_channel: Mapped[str | None] = mapped_column(String(32))
    next_digest_at: Mapped[datetime | None] = mapped_column(index=True)
    #: An admin of the deployment: told of its alerts (``pa alerts``), through their channels.
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, display_name={self.display_name!r})"
