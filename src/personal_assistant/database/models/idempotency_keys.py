"""``idempotency_keys``: the first answer to each ``Idempotency-Key`` a caller sent, for a day.

A create of the HTTP API sent with an ``Idempotency-Key`` header is claimed here first (one row
per ``(user_id, key)``: the primary key makes a second claim impossible), then answered; its
answer (status, JSON body, ``Location``) is stored in the row, so that the same key again gets
that answer back instead of a second object. ``request_hash`` is the SHA-256 of what was asked
(method, path, body): the same key with another request is refused. ``status`` unset: the
first request is still being answered. Rows older than a day are deleted
(:mod:`personal_assistant.auth.idempotency`); deleting the user deletes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.database.models.base import Base
from personal_assistant.database.types import BigId


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: SHA-256 (hex) of the method, the path and the body of the first request.
    request_hash: Mapped[str] = mapped_column(String(64))
    #: When the key was claimed: expired a day later (indexed for that sweep).
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: The first answer; None while it is being made.
    status: Mapped[int | None]
    answer: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(2048))

    def __repr__(self) -> str:
        return f"IdempotencyKey(user_id={self.user_id!r}, status={self.status!r})"
