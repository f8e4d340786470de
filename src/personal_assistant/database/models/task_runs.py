"""``task_runs``: one row per scheduled firing; the unique key makes a duplicate impossible."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from personal_assistant.core.states import RunState
from personal_assistant.database.models.base import Base, one_of
from personal_assistant.database.types import BigId


class TaskRun(Base):
    __tablename__ = "task_runs"
    __table_args__ = (
        UniqueConstraint("task_id", "scheduled_for"),
        one_of("state", RunState),
        # The reaper and the retry dispatcher: open runs whose lease has expired.
        Index("ix_task_runs_state_lease_expires_at", "state", "lease_expires_at"),
        # Fair dispatch: a user's open runs, and runs sent in the last hour (runs/fair_store.py).
        Index("ix_task_runs_user_id_state_published_at", "user_id", "state", "published_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigId, ForeignKey("ai_tasks.id", ondelete="CASCADE"))
    #: The task's owner, copied when the run is written (a task never changes owner); NULL only
    #: for a row written outside the package, which fair dispatch then does not limit.
    user_id: Mapped[int | None] = mapped_column(BigId)
    scheduled_for: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempt: Mapped[int] = mapped_column(default=0)
    queued_at: Mapped[datetime]
    #: When its message was last published; NULL: never (sent on the scheduler's next tick).
    published_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    agent_name: Mapped[str | None] = mapped_column(String(64))
    agent_model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]

    def __repr__(self) -> str:
        return f"TaskRun(id={self.id!r}, task_id={self.task_id!r}, state={self.state!r})"
