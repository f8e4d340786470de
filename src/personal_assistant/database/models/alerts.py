"""``alerts``: the built-in alert evaluator's episodes, one row per time a condition held.

A row is ``pending`` while its condition holds but has not held for ``ALERT_OPEN_AFTER_SECONDS``
yet (deleted if the condition clears first), ``open`` once the admins were told, ``resolved``
once they were told it cleared. At most one episode of a key is not resolved (a partial unique
index), so two evaluators cannot open the same alert twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.core.states import AlertStatus
from personal_assistant.database.models.base import Base, one_of
from personal_assistant.database.types import BigId

_UNRESOLVED = text("status <> 'resolved'")


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        one_of("status", AlertStatus),
        Index(
            "ux_alerts_key_unresolved",
            "key",
            unique=True,
            postgresql_where=_UNRESOLVED,
            sqlite_where=_UNRESOLVED,
        ),
        Index("ix_alerts_key_opened_at", "key", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The rule and what it is about, e.g. ``NoConsumerOnQueue:ai_tasks``.
    key: Mapped[str] = mapped_column(String(80))
    rule: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(200))
    #: The figure that made it hold, as last seen, e.g. ``0 consumers``.
    value: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"Alert(id={self.id!r}, key={self.key!r}, status={self.status!r})"
