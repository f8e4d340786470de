"""``api_keys``: the keys a user's programs call the HTTP API with (``pa user key``).

A key is ``pa_<id>_<secret>`` (:mod:`personal_assistant.auth.tokens`): the row keeps its public
part (``prefix``, shown in lists) and the SHA-256 of the whole key, never the key. A revoked key
keeps its row (``revoked_at``), so that a list still shows it; deleting the user deletes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.database.models.base import Base
from personal_assistant.database.types import BigId


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    #: ``pa_<id>``: finds the row, and may be shown.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    #: SHA-256 of the whole key, hex.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    #: Written at most once a minute (``auth.store.LAST_USED_EVERY``).
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, name={self.name!r}, prefix={self.prefix!r})"
