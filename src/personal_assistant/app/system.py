"""The system operations of the façade: its health, the newest runs and notifications (what
``pa run``'s screen shows) and the demo task of a first start.

A database that does not answer raises
:class:`~personal_assistant.database.failures.UnusableDatabase` (a ``ConfigurationError``
naming ``DATABASE_URL``). The reads import their models when called: ``pa worker`` does not
pay for them at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from personal_assistant.app._base import Part
from personal_assistant.database.failures import explained

if TYPE_CHECKING:
    from collections.abc import Callable

    from personal_assistant.doctor.report import Check, Report
    from personal_assistant.doctor.run import Options
    from personal_assistant.workers.utils.health import Health

#: How long after its creation the demo task is due.
DEMO_DELAY = timedelta(seconds=5)


@dataclass(frozen=True)
class FinishedRun:
    """A run that succeeded or failed, and its task's title."""

    id: int
    state: str
    title: str
    result: str | None
    error: str | None
    finished_at: datetime
    scheduled_for: datetime


@dataclass(frozen=True)
class NewNotification:
    """A notification as the screen shows it."""

    id: int
    channel: str
    status: str
    title: str
    body: str


@dataclass(frozen=True)
class Demo:
    """The demo user and task made on a first start, and when the task is due."""

    user_id: int
    task_id: int
    title: str
    at: datetime


class System(Part):
    """What the whole system is doing, across users."""

    async def health(self) -> Health:
        """Progress read from the database and assessed, live workers and scheduler included
        (heartbeats are stale after ``STALE_AFTER_BEATS`` intervals of ``HEARTBEAT_INTERVAL``),
        and whether the broker answers."""
        import asyncio

        from personal_assistant.health.liveness import stale_after_s
        from personal_assistant.redaction import mask_url
        from personal_assistant.workers.broker_ping import broker_error
        from personal_assistant.workers.utils.health import status_health
        from personal_assistant.workers.utils.snapshot_reads import take_snapshot

        with explained("cannot read the database at", self.settings.database_url):
            snapshot = await take_snapshot(self.engine, self.clock())
        broker = await asyncio.to_thread(broker_error, self.settings)
        stale = stale_after_s(self.settings.heartbeat_interval_seconds)
        return status_health(snapshot, stale, mask_url(self.settings.broker_url), broker)

    async def last_ids(self) -> tuple[int, int]:
        """The newest run id and the newest notification id (0: none yet)."""
        from sqlalchemy import func, select

        from personal_assistant.database.models import Notification, TaskRun

        with explained("cannot read the database at", self.settings.database_url):
            async with self.engine.connect() as conn:
                last_run = await conn.scalar(select(func.max(TaskRun.id)))
                last_note = await conn.scalar(select(func.max(Notification.id)))
        return last_run or 0, last_note or 0

    async def new_since(
        self, last_run: int, last_note: int
    ) -> tuple[list[FinishedRun], list[NewNotification]]:
        """Runs finished after ``last_run`` and notifications after ``last_note``, oldest first."""
        from sqlalchemy import select

        from personal_assistant.core.states import RunState
        from personal_assistant.database.models import AITask, Notification, TaskRun

        final = [RunState.SUCCEEDED, RunState.FAILED]
        runs = (
            select(
                TaskRun.id,
                TaskRun.state,
                AITask.title,
                TaskRun.result,
                TaskRun.error,
                TaskRun.finished_at,
                TaskRun.scheduled_for,
            )
            .join(AITask, AITask.id == TaskRun.task_id)
            .where(TaskRun.id > last_run, TaskRun.state.in_(final))
            .order_by(TaskRun.id)
        )
        notes = (
            select(
                Notification.id,
                Notification.channel,
                Notification.status,
                Notification.title,
                Notification.body,
            )
            .where(Notification.id > last_note)
            .order_by(Notification.id)
        )
        with explained("cannot read the database at", self.settings.database_url):
            async with self.engine.connect() as conn:
                run_rows = (await conn.execute(runs)).all()
                note_rows = (await conn.execute(notes)).all()
        return (
            # A final run has its finished_at (the run's state machine sets both together).
            [FinishedRun(*row) for row in run_rows],  # type: ignore[arg-type]
            [NewNotification(*row) for row in note_rows],
        )

    async def ensure_demo(self, timezone: str) -> Demo | None:
        """On a first start (no user yet), a demo user in ``timezone`` (an admin: the person at
        the keyboard runs this deployment) and a task due soon."""
        from personal_assistant.tasks.manager import AITaskManager

        manager = AITaskManager(self.settings, engine=self.engine, clock=self.clock)
        with explained("cannot use", self.settings.database_url):
            if await manager.list_users():
                return None
            # On a first start the one user runs the deployment: told of its alerts too.
            user = await manager.create_user("Demo user", timezone=timezone, is_admin=True)
            at = self.clock() + DEMO_DELAY
            task = await manager.create_task(
                user.id,
                "Welcome to your assistant",
                description="Say hello and explain what this assistant does in background.",
                schedule={"kind": "once", "at": at.isoformat()},
            )
        return Demo(user.id, task.id, task.title, at)

    async def serve_metrics(
        self, port: int, bind: str, *, ready: Callable[[int], None] | None = None
    ) -> None:
        """Publish the deployment's figures on ``/metrics`` until cancelled
        (:mod:`personal_assistant.doctor.exporter`); ``ready``: told the port once serving."""
        import asyncio

        from personal_assistant.doctor.exporter import (
            DeploymentCollector,
            read_figures,
            registry_for,
        )
        from personal_assistant.doctor.run import client_app
        from personal_assistant.errors import ConfigurationError
        from personal_assistant.metrics.exposition import start

        app = client_app(self.settings)

        async def read() -> Any:
            return await read_figures(self.settings, self.engine, self.clock(), app)

        collector = DeploymentCollector(read, asyncio.get_running_loop())
        served = start(registry_for(collector), port, bind)
        if served is None:
            raise ConfigurationError(f"cannot listen on {bind}:{port}", field="--port")
        try:
            if ready is not None:
                ready(served.port)
            await asyncio.Event().wait()  # until cancelled (Ctrl-C, SIGTERM)
        finally:
            await asyncio.to_thread(served.close)

    async def doctor(self, options: Options | None = None) -> Report:
        """Validate the running deployment (:mod:`personal_assistant.doctor`); with
        ``options.channels_of``, also send a test message through each of that user's
        channels."""
        from dataclasses import replace

        from personal_assistant.doctor.run import Options, diagnose

        options = options or Options()
        report = await diagnose(self.settings, self.engine, self.clock, options)
        if options.channels_of is None:
            return report
        tested = await self._test_channels(options.channels_of)
        return replace(report, checks=report.checks + tested, finished_at=self.clock())

    async def _test_channels(self, user_id: int) -> tuple[Check, ...]:
        from personal_assistant.app.channels import Channels
        from personal_assistant.doctor.canary_checks import channel_test
        from personal_assistant.tasks.manager import AITaskManager

        manager = AITaskManager(self.settings, engine=self.engine, clock=self.clock)
        try:
            owner = await manager.get_user(user_id)
        finally:
            await manager.close()
        channels = Channels(self.engine, self.settings, self.clock)
        checks = []
        for channel in await channels.list_for(owner.id):
            result = await channels.test(owner, channel.name)
            checks.append(channel_test(channel.name, channel.kind, result.delivered, result.reason))
        return tuple(checks)
