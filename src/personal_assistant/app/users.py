"""The users operations of the façade: change a user, and remove one with all they own.

Creating, reading and listing users stay on the task manager (``app.tasks.create_user``,
``get_user``, ``list_users``), which tasks and scripts already call. A user's fields are checked
as :meth:`~personal_assistant.tasks.manager.AITaskManager.create_user` checks them, and every
error names the field (``display_name``, ``email``, ``phone``, ``timezone``, ``is_admin``,
``user_id``).

Removing a user removes what they own with them: every foreign key to ``users`` (tasks,
notifications, channels, calendar feeds, imports, API keys) and below (runs, reminders) is
``ON DELETE CASCADE``, so one ``DELETE`` in one transaction does it on both backends (SQLite's
``foreign_keys`` pragma is set by :func:`~personal_assistant.database.engine.make_async_engine`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from personal_assistant.app._base import Part
from personal_assistant.database.models import (
    AITask,
    ApiKey,
    CalendarFeed,
    Notification,
    NotificationChannel,
    TaskRun,
    User,
)
from personal_assistant.digests.rules import next_digest_at
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.tasks import inputs as check

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["Footprint", "Users"]

#: The fields :meth:`Users.edit` changes, as its keyword arguments are named.
FIELDS = ("display_name", "email", "phone", "timezone", "is_admin")


@dataclass(frozen=True)
class Footprint:
    """A user and how much they own: what :meth:`Users.remove` removes with them."""

    user_id: int
    display_name: str
    tasks: int
    runs: int
    notifications: int
    channels: int
    calendars: int
    keys: int


class Users(Part):
    """Edit a user's fields; count and remove what a user owns."""

    async def edit(
        self,
        user_id: int,
        *,
        display_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        timezone: str | None = None,
        is_admin: bool | None = None,
    ) -> User:
        """Change the fields given (None: unchanged; ``""`` clears ``email`` or ``phone``).

        A new ``timezone`` moves the next daily digest to its time in that zone; tasks keep the
        zone of their schedule (``pa task edit ID --tz``). Nothing given: a ValidationError.
        """
        given = dict(
            display_name=display_name,
            email=email,
            phone=phone,
            timezone=timezone,
            is_admin=is_admin,
        )
        changes = _checked({k: v for k, v in given.items() if v is not None})
        if not changes:
            raise ValidationError(
                f"nothing to change: give one of {', '.join(FIELDS)}", field="user"
            )
        user_id = _user_id(user_id)
        async with AsyncSession(self.engine, expire_on_commit=False) as session, session.begin():
            user = await session.get(User, user_id, with_for_update=True)
            if user is None:
                raise NotFoundError(f"user {user_id} not found", field="user_id")
            for key, value in changes.items():
                setattr(user, key, value)
            if "timezone" in changes and user.digest_at is not None:
                user.next_digest_at = next_digest_at(
                    user.digest_at, ZoneInfo(user.timezone), self.clock()
                )
        return user

    async def footprint(self, user_id: int) -> Footprint:
        """The user and the number of rows of each kind they own (a NotFoundError if none)."""
        async with self.engine.connect() as conn:
            return await _footprint(conn, _user_id(user_id))

    async def remove(self, user_id: int) -> Footprint:
        """Remove the user with their tasks, runs, notifications, channels, calendar feeds and
        API keys, in one transaction; returns what was removed."""
        user_id = _user_id(user_id)
        async with self.engine.begin() as conn:
            found = await _footprint(conn, user_id)
            await conn.execute(delete(User).where(User.id == user_id))
        return found


def _user_id(value: object) -> int:
    known = check.record_id(value, "user_id")
    if known is None:
        raise NotFoundError("user not found (the id is beyond 64 bits)", field="user_id")
    return known


def _checked(given: dict[str, Any]) -> dict[str, Any]:
    """The given fields, checked as ``create_user`` checks them."""
    out: dict[str, Any] = {}
    if "display_name" in given:
        out["display_name"] = check.text(
            given["display_name"], "display_name", max_len=check.NAME_MAX
        )
    if "email" in given:
        out["email"] = check.email(given["email"])
    if "phone" in given:
        out["phone"] = check.phone(given["phone"])
    if "timezone" in given:
        out["timezone"] = check.timezone(given["timezone"])
    if "is_admin" in given:
        out["is_admin"] = check.flag(given["is_admin"], "is_admin")
    return out


async def _footprint(conn: AsyncConnection, user_id: int) -> Footprint:
    name = await conn.scalar(select(User.display_name).where(User.id == user_id))
    if name is None:
        raise NotFoundError(f"user {user_id} not found", field="user_id")

    async def count(model: Any, *where: Any) -> int:
        return int(await conn.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    owned_task = TaskRun.task_id.in_(select(AITask.id).where(AITask.user_id == user_id))
    return Footprint(
        user_id=user_id,
        display_name=name,
        tasks=await count(AITask, AITask.user_id == user_id),
        runs=await count(TaskRun, owned_task),
        notifications=await count(Notification, Notification.user_id == user_id),
        channels=await count(NotificationChannel, NotificationChannel.user_id == user_id),
        calendars=await count(CalendarFeed, CalendarFeed.user_id == user_id),
        keys=await count(ApiKey, ApiKey.user_id == user_id),
    )
