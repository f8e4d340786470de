"""``AITaskManager``: the database operations on AI tasks, for the CLI, APIs and scripts.

>>> manager = AITaskManager()                       # settings from the environment
>>> user = await manager.create_user("Ada", timezone="Europe/London")
>>> task = await manager.create_task(user.id, "Stand up", schedule={"kind": "daily",
...                                  "times": ["09:00"]})
>>> await manager.list_tasks(user.id)

Every public method checks the types of what it is given before anything else, and refuses a
wrong one with :class:`ValidationError` naming the parameter (an id must be an ``int``, not a
bool, a numeric string or a float). Every per-user operation checks ownership: a task that
belongs to someone else is reported as not found, and so is an id outside the database's
64-bit range. A task that starts to count as active or paused (created, or a finished task
resumed or rescheduled) is checked against ``MAX_ACTIVE_TASKS_PER_USER`` under a lock on its
owner's row (:mod:`quotas`).

A schedule edit (and a resume) sets ``next_run_at`` to the schedule's first firing after now
that has no run yet, so that the scheduler never plans a firing whose run exists; with no such
firing left, an active task is completed and says why, or left to the run in flight that will
finish it.

The manager never talks to the broker: a run it creates (``run_now``) is a row that the
scheduler dispatches on its next tick. Each call opens its own database connection by default,
so a manager may be used from several ``asyncio.run`` calls; pass a shared ``engine`` to pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from personal_assistant.clock import utcnow
from personal_assistant.closing import AsyncClosing
from personal_assistant.config import Settings
from personal_assistant.core.next_run import next_after, preview
from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_kinds import Schedule
from personal_assistant.core.states import OPEN_RUN_STATES, RunState, TaskStatus
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import AITask, Notification, TaskRun, User
from personal_assistant.errors import (
    ConflictError,
    NotFoundError,
)
from personal_assistant.notifications.channel_store import check_task_channels
from personal_assistant.tasks import inputs as check
from personal_assistant.tasks import proposals, quotas, rows
from personal_assistant.tasks.page import COLUMNS, LIMIT_MAX, TaskPage

_UNSET: Any = object()


class AITaskManager(AsyncClosing):
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: AsyncEngine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._owns_engine = engine is None
        self._clock = clock
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    def __repr__(self) -> str:
        return "AITaskManager()"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def _limits(self) -> quotas.Limits:
        return quotas.Limits.from_settings(self.settings)

    def _session(self) -> AsyncSession:
        if self._sessions is None:
            if self._engine is None:
                self._engine = make_async_engine(self.settings.database_url, pooled=False)
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        return self._sessions()

    async def close(self) -> None:
        if self._engine is not None and self._owns_engine:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None

    # Users ------------------------------------------------------------------------------------

    async def create_user(
        self,
        display_name: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        timezone: str = "UTC",
        is_admin: bool = False,
    ) -> User:
        """A new user; an admin (``is_admin``) is also told of the deployment's alerts."""
        user = User(
            display_name=check.text(display_name, "display_name", max_len=check.NAME_MAX),
            email=check.email(email),
            phone=check.phone(phone),
            timezone=check.timezone(timezone),
            is_admin=bool(is_admin),
            created_at=self._clock(),
        )
        async with self._session() as session, session.begin():
            session.add(user)
        return user

    async def get_user(self, user_id: int) -> User:
        user_id = _known_id(user_id, "user")
        async with self._session() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"user {user_id} not found", field="user_id")
        return user

    async def set_admin(self, user_id: int, is_admin: bool) -> User:
        """Make the user an admin of the deployment (told of its alerts), or no longer one."""
        user_id = _known_id(user_id, "user")
        async with self._session() as session, session.begin():
            user = await session.get(User, user_id)
            if user is None:
                raise NotFoundError(f"user {user_id} not found", field="user_id")
            user.is_admin = bool(is_admin)
        return user

    async def list_users(self) -> list[User]:
        async with self._session() as session:
            return list((await session.scalars(select(User).order_by(User.id))).all())

    # Tasks ------------------------------------------------------------------------------------

    async def create_task(
        self,
        user_id: int,
        title: str,
        *,
        schedule: Mapping[str, Any] | Schedule,
        description: str = "",
        task_type: str = "reminder",
        ai_context: Mapping[str, Any] | None = None,
        notification_channels: Iterable[str] | None = None,
        catch_up: str = "once",
        max_retries: int | None = None,
    ) -> AITask:
        now = self._clock()
        user_id = _known_id(user_id, "user")
        channels = check.channels(notification_channels)
        fields = {
            "title": check.title(title),
            "description": check.description(description),
            "task_type": check.task_type(task_type),
            "ai_context": check.ai_context(ai_context),
            "notification_channels": channels,
            "catch_up": check.catch_up(catch_up),
            "max_retries": check.max_retries(
                self.settings.default_max_retries if max_retries is None else max_retries
            ),
        }
        async with self._session() as session, session.begin():
            conn = await session.connection()
            if not await quotas.lock_user(conn, user_id):
                raise NotFoundError(f"user {user_id} not found", field="user_id")
            user = await session.get(User, user_id)
            assert user is not None  # locked above
            await check_task_channels(session, user_id, channels)
            parsed, first = check.schedule(schedule, user.timezone, now)
            await quotas.reserve_active(conn, user_id, 1, self._limits)
            row = rows.new_task(fields, schedule=parsed, next_run_at=first, now=now)
            task = AITask(user_id=user_id, **row)
            session.add(task)
        return task

    async def preview_schedule(
        self, user_id: int, schedule: Mapping[str, Any], count: int = 5
    ) -> tuple[Schedule, list[datetime]]:
        """A schedule as a task gets it, and its next ``count`` firings; nothing is created."""
        now = self._clock()
        count = check.whole(count, "count", low=1, high=1000)
        user = await self.get_user(user_id)
        parsed, _first = check.schedule(schedule, user.timezone, now)
        return parsed, preview(parsed, now, count)

    async def propose_task(self, user_id: int, text: str) -> Proposal | Refusal:
        """The task ``text`` asks for, in the user's zone (:mod:`proposals`); none is made."""
        user = await self.get_user(user_id)
        return await proposals.read_checked(text, user.timezone, self._clock(), self.settings)

    async def create_task_from_text(self, user_id: int, text: str, **overrides: Any) -> AITask:
        """The task ``text`` asks for, created; a request not read for sure: ValidationError."""
        reading = proposals.sure(await self.propose_task(user_id, text))
        return await self.create_task(user_id, **proposals.task_fields(reading, overrides))

    async def get_task(self, task_id: int, user_id: int) -> AITask:
        async with self._session() as session:
            return await _owned_task(session, task_id, user_id)

    async def list_tasks(
        self,
        user_id: int,
        *,
        status: str | None = None,
        task_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after_id: int | None = None,
    ) -> list[AITask]:
        page = TaskPage.checked(
            user_id,
            status=status,
            task_type=task_type,
            limit=limit,
            offset=offset,
            after_id=after_id,
        )
        sql, params = page.statement()
        typed = text(sql).bindparams(**params).columns(*(getattr(AITask, c) for c in COLUMNS))
        async with self._session() as session:
            return list((await session.scalars(select(AITask).from_statement(typed))).all())

    async def update_task(
        self,
        task_id: int,
        user_id: int,
        *,
        title: str = _UNSET,
        description: str = _UNSET,
        schedule: Mapping[str, Any] | Schedule = _UNSET,
        task_type: str = _UNSET,
        ai_context: Mapping[str, Any] | None = _UNSET,
        notification_channels: Iterable[str] = _UNSET,
        catch_up: str = _UNSET,
        max_retries: int = _UNSET,
    ) -> AITask:
        changes: dict[str, Any] = {}
        if title is not _UNSET:
            changes["title"] = check.title(title)
        if description is not _UNSET:
            changes["description"] = check.description(description)
        if task_type is not _UNSET:
            changes["task_type"] = check.task_type(task_type)
        if ai_context is not _UNSET:
            changes["ai_context"] = check.ai_context(ai_context)
        if notification_channels is not _UNSET:
            changes["notification_channels"] = check.channels(notification_channels)
        if catch_up is not _UNSET:
            changes["catch_up"] = check.catch_up(catch_up)
        if max_retries is not _UNSET:
            changes["max_retries"] = check.max_retries(max_retries)
        task_id, user_id = _known_id(task_id, "task"), _known_id(user_id, "user")
        async with self._session() as session, session.begin():
            if schedule is not _UNSET:  # it may revive a finished task: the owner first
                await quotas.lock_user(await session.connection(), user_id)
            task = await _owned_task(session, task_id, user_id, lock=True)
            now = self._clock()  # read once the row is ours: a claim may have held it
            if "notification_channels" in changes:
                await check_task_channels(session, user_id, changes["notification_channels"])
            if schedule is not _UNSET:
                user = await session.get(User, user_id)
                assert user is not None
                parsed, first = check.schedule(schedule, user.timezone, now)
                following = await _first_unrun(session, task_id, parsed, first)
                changes.update(rows.schedule_columns(parsed), next_run_at=following)
                open_run = following is None and await _has_open_run(session, task_id)
                changes.update(
                    rows.status_after_edit(
                        TaskStatus(task.status), following, ran=first, open_run=open_run
                    )
                )
                if changes.get("status") == TaskStatus.ACTIVE:  # a finished task revived
                    conn = await session.connection()
                    await quotas.reserve_active(conn, user_id, 1, self._limits)
            for key, value in changes.items():
                setattr(task, key, value)
            task.updated_at = now
        return task

    async def pause_task(
        self, task_id: int, user_id: int, *, reason: str = "paused by its owner"
    ) -> AITask:
        async with self._session() as session, session.begin():
            task = await _owned_task(session, task_id, user_id, lock=True)
            if task.status != TaskStatus.ACTIVE:
                raise ConflictError(f"task {task_id} is {task.status}, not active", field="status")
            task.status = TaskStatus.PAUSED
            task.status_reason = check.text(reason, "reason", max_len=500)
            task.updated_at = self._clock()
        return task

    async def resume_task(self, task_id: int, user_id: int) -> AITask:
        task_id, user_id = _known_id(task_id, "task"), _known_id(user_id, "user")
        async with self._session() as session, session.begin():
            conn = await session.connection()
            await quotas.lock_user(conn, user_id)  # the owner first, as everywhere
            task = await _owned_task(session, task_id, user_id, lock=True)
            now = self._clock()
            if task.status == TaskStatus.ACTIVE:
                raise ConflictError(f"task {task_id} is already active", field="status")
            if task.status not in quotas.HELD:  # completed or failed: it counts again
                await quotas.reserve_active(conn, user_id, 1, self._limits)
            schedule = parse_schedule(task.schedule)
            following = await _first_unrun(session, task_id, schedule, next_after(schedule, now))
            if following is None:
                raise ConflictError(
                    f"task {task_id}'s schedule has no firing after now", field="schedule"
                )
            task.status = TaskStatus.ACTIVE
            task.status_reason = None
            task.consecutive_failures = 0
            task.next_run_at = following
            task.updated_at = now
        return task

    async def delete_task(self, task_id: int, user_id: int) -> None:
        """Delete a task with its runs and notifications."""
        async with self._session() as session, session.begin():
            task = await _owned_task(session, task_id, user_id, lock=True)
            await session.delete(task)

    async def run_now(self, task_id: int, user_id: int) -> TaskRun:
        """Queue an extra run now; the scheduler sends it on its next tick."""
        now = self._clock()
        task_id, user_id = _known_id(task_id, "task"), _known_id(user_id, "user")
        async with self._session() as session, session.begin():
            await _owned_task(session, task_id, user_id)
            run = TaskRun(
                task_id=task_id,
                user_id=user_id,  # the owner, checked just above (fair dispatch counts by it)
                scheduled_for=now,
                state=RunState.QUEUED,
                attempt=0,
                queued_at=now,
                lease_expires_at=now,
            )
            session.add(run)
            try:
                await session.flush()
            except IntegrityError:
                raise ConflictError(
                    f"task {task_id} already has a run at this instant", field="task_id"
                ) from None
        return run

    # Runs and notifications --------------------------------------------------------------------

    async def get_run(self, run_id: int, user_id: int) -> TaskRun:
        run_id, user_id = _known_id(run_id, "run"), _known_id(user_id, "user")
        async with self._session() as session:
            run = await session.scalar(
                select(TaskRun)
                .join(AITask, AITask.id == TaskRun.task_id)
                .where(TaskRun.id == run_id, AITask.user_id == user_id)
            )
        if run is None:
            raise NotFoundError(f"run {run_id} not found", field="run_id")
        return run

    async def list_runs(
        self, user_id: int, *, task_id: int | None = None, state: str | None = None, limit: int = 50
    ) -> list[TaskRun]:
        user_id = _known_id(user_id, "user")
        query = (
            select(TaskRun)
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(AITask.user_id == user_id)
        )
        if task_id is not None:
            task_id = _known_id(task_id, "task")
            query = query.where(TaskRun.task_id == task_id)
        if state is not None:
            query = query.where(TaskRun.state == check.choice(state, RunState, "state"))
        query = query.order_by(TaskRun.scheduled_for.desc(), TaskRun.id.desc())
        async with self._session() as session:
            if task_id is not None:
                await _owned_task(session, task_id, user_id)
            return list((await session.scalars(query.limit(_limit(limit)))).all())

    async def list_notifications(
        self,
        user_id: int,
        *,
        channel: str | None = None,
        unread_only: bool = False,
        limit: int = 50,
    ) -> list[Notification]:
        user_id = _known_id(user_id, "user")
        query = select(Notification).where(Notification.user_id == user_id)
        if channel is not None:
            query = query.where(Notification.channel == check.text(channel, "channel", max_len=200))
        if check.flag(unread_only, "unread_only"):
            query = query.where(Notification.read_at.is_(None))
        query = query.order_by(Notification.id.desc()).limit(_limit(limit))
        async with self._session() as session:
            return list((await session.scalars(query)).all())

    async def count_unread(self, user_id: int) -> int:
        """The user's notifications not read yet."""
        user_id = _known_id(user_id, "user")
        unread = (Notification.user_id == user_id, Notification.read_at.is_(None))
        async with self._session() as session:
            return int(await session.scalar(select(func.count()).where(*unread)) or 0)

    async def mark_notifications_read(self, user_id: int, ids: Sequence[int]) -> int:
        user_id = _known_id(user_id, "user")
        wanted = check.record_ids(ids, "ids", max_len=_LIMIT_MAX)
        async with self._session() as session, session.begin():
            notes = (
                await session.scalars(
                    select(Notification).where(
                        Notification.user_id == user_id,
                        Notification.id.in_(wanted),
                        Notification.read_at.is_(None),
                    )
                )
            ).all()
            for note in notes:
                note.read_at = self._clock()
        return len(notes)

    async def count_tasks(self, *, status: str | None = None) -> int:
        query = select(func.count()).select_from(AITask)
        if status is not None:
            query = query.where(AITask.status == check.choice(status, TaskStatus, "status"))
        async with self._session() as session:
            return int(await session.scalar(query) or 0)


async def _first_unrun(
    session: AsyncSession, task_id: int, schedule: Schedule, first: datetime | None
) -> datetime | None:
    """``first``, or the firing after it while the task already has a run at that instant.

    ``first`` is computed from this process's clock; the scheduler may have run that firing
    already (its clock ahead, or its claim committed while this edit waited for the row). Were
    ``next_run_at`` set to it, the claim would find the run there (``UNIQUE (task_id,
    scheduled_for)``), make none, and leave a ``once`` task active with nothing to run.
    """
    if first is None:
        return None
    taken = set(
        (
            await session.scalars(
                select(TaskRun.scheduled_for).where(
                    TaskRun.task_id == task_id, TaskRun.scheduled_for >= first
                )
            )
        ).all()
    )
    fire: datetime | None = first
    while fire is not None and fire in taken:
        fire = next_after(schedule, fire)
    return fire


async def _has_open_run(session: AsyncSession, task_id: int) -> bool:
    found = await session.scalar(
        select(TaskRun.id)
        .where(TaskRun.task_id == task_id, TaskRun.state.in_(OPEN_RUN_STATES))
        .limit(1)
    )
    return found is not None


#: The most rows one call lists, and the most ids it takes.
_LIMIT_MAX = LIMIT_MAX


_known_id = check.known_id


def _limit(limit: object) -> int:
    return check.whole(limit, "limit", low=1, high=_LIMIT_MAX)


async def _owned_task(
    session: AsyncSession, task_id: int, user_id: int, *, lock: bool = False
) -> AITask:
    task_id, user_id = _known_id(task_id, "task"), _known_id(user_id, "user")
    query = select(AITask).where(AITask.id == task_id, AITask.user_id == user_id)
    if lock:
        query = query.with_for_update()
    task = await session.scalar(query)
    if task is None:
        raise NotFoundError(f"task {task_id} not found", field="task_id")
    return task
