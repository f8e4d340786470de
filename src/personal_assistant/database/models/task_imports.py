"""``task_imports``: how many tasks each import brought into a user, and when.

The ledger of ``MAX_IMPORTS_PER_HOUR`` (``tasks/quotas.py``). It is kept apart
from the tasks themselves: deleting imported tasks gives no import back, so delete-and-import
cycles cannot pass the limit. Rows older than the window are deleted by the next import of
the same user.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.database.models.base import Base
from personal_assistant.database.types import BigId


class TaskImport(Base):
    __tablename__ = "task_imports"
    __table_args__ = (Index("ix_task_imports_user_id_imported_at", "user_id", "imported_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    imported_at: Mapped[datetime]
    tasks: Mapped[int]

    def __repr__(self) -> str:
        return f"TaskImport(user_id={self.user_id!r}, tasks={self.tasks!r})"
