"""One page of a user's tasks: its checked filters and its one statement.

The manager (:meth:`~personal_assistant.tasks.manager.AITaskManager.list_tasks`, the HTTP API)
loads the statement's rows as models; ``pa task list`` reads them through a plain driver
connection as :class:`TaskRow` (:mod:`~personal_assistant.database.plain`), so that it answers
without loading SQLAlchemy. Both check the filters here and run the same SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from personal_assistant.core.states import TaskStatus
from personal_assistant.database.plain import PlainReader, instant, json_value, utc
from personal_assistant.tasks import inputs as check

#: The most tasks one page holds.
LIMIT_MAX = 10_000


class TaskRow(NamedTuple):
    """A task as its row holds it (the fields of the model, for reading)."""

    id: int
    user_id: int
    title: str
    description: str
    task_type: str
    schedule_kind: str
    schedule: dict[str, Any]
    timezone: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    status: str
    status_reason: str | None
    ai_context: dict[str, Any]
    notification_channels: list[str]
    catch_up: str
    max_retries: int
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def read(cls, row: Sequence[Any]) -> TaskRow:
        """The row as a driver returns it (SQLite: text for times and JSON)."""
        values = dict(zip(cls._fields, row, strict=True))
        for name in ("schedule", "ai_context", "notification_channels"):
            values[name] = json_value(values[name])
        for name in ("next_run_at", "last_run_at"):
            values[name] = utc(values[name])
        for name in ("created_at", "updated_at"):
            values[name] = instant(values[name])
        return cls(**values)


#: The columns a page selects, in :class:`TaskRow`'s order.
COLUMNS = TaskRow._fields


@dataclass(frozen=True)
class TaskPage:
    """Checked filters: the user's tasks by id, after ``after_id``, skipping ``offset``."""

    user_id: int
    status: str | None = None
    task_type: str | None = None
    limit: int = 100
    offset: int = 0
    after_id: int | None = None

    @classmethod
    def checked(
        cls,
        user_id: object,
        *,
        status: object = None,
        task_type: object = None,
        limit: object = 100,
        offset: object = 0,
        after_id: object = None,
    ) -> TaskPage:
        """The filters as given, each refused with a ValidationError naming it."""
        return cls(
            user_id=check.known_id(user_id, "user"),
            status=None if status is None else check.choice(status, TaskStatus, "status"),
            task_type=None if task_type is None else check.task_type(task_type),
            limit=check.whole(limit, "limit", low=1, high=LIMIT_MAX),
            offset=check.whole(offset, "offset", low=0, high=check.ID_MAX),
            after_id=(
                None
                if after_id is None
                else check.whole(after_id, "cursor", low=0, high=check.ID_MAX)
            ),
        )

    def statement(self) -> tuple[str, dict[str, object]]:
        """The page's SQL, with ``:name`` parameters, and their values."""
        where = ["user_id = :user_id"]
        params: dict[str, object] = {"user_id": self.user_id}
        for column, value in (
            ("id", self.after_id),
            ("status", self.status),
            ("task_type", self.task_type),
        ):
            if value is not None:
                where.append(f"{column} {'>' if column == 'id' else '='} :{column}")
                params[column] = value
        params.update(limit=self.limit, offset=self.offset)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM ai_tasks WHERE {' AND '.join(where)}"
            " ORDER BY id LIMIT :limit OFFSET :offset"
        )
        return sql, params

    def read(self, reader: PlainReader) -> list[TaskRow]:
        sql, params = self.statement()
        return [TaskRow.read(row) for row in reader.rows(sql, params)]
