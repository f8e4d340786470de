"""``Assistant``: the one façade over the nouns, on one engine, for one command or request.

The CLI calls only this (``personal_assistant.cli.session.run``), never the stores, so it holds
no SQL and opens no transaction of its own: each operation here opens its own, short. The
façade is built from the process's settings (read once, by its caller) and shares one engine
between the task manager and the per-noun operations:

>>> async with Assistant(settings) as app:
...     user = await app.tasks.create_user("Ada", timezone="Europe/Paris")
...     channel = await app.channels.add(user.id, validate("mail", "mailtos://..."))
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.clock import utcnow
from personal_assistant.closing import AsyncClosing
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.tasks.manager import AITaskManager

if TYPE_CHECKING:
    from personal_assistant.app.alerts import Alerts
    from personal_assistant.app.calendars import Calendars
    from personal_assistant.app.channels import Channels
    from personal_assistant.app.dashboard import Dashboard
    from personal_assistant.app.digests import Digests
    from personal_assistant.app.events import Events
    from personal_assistant.app.exports import Exports
    from personal_assistant.app.idempotency import Idempotency
    from personal_assistant.app.keys import Keys
    from personal_assistant.app.system import System
    from personal_assistant.app.users import Users
    from personal_assistant.app.versions import Versions

__all__ = ["Assistant"]


class Assistant(AsyncClosing):
    """Users, tasks, runs and notifications (:attr:`tasks`), and channels, calendars, digests,
    API keys, exports and the system's state, each a small class of its own sharing this engine
    (imported on first use: a command loads only the parts it calls)."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._owns_engine = engine is None
        self.engine = engine or make_async_engine(settings.database_url, pooled=False)

    def __repr__(self) -> str:
        return "Assistant()"

    @cached_property
    def tasks(self) -> AITaskManager:
        return AITaskManager(self.settings, engine=self.engine, clock=self.clock)

    @cached_property
    def channels(self) -> Channels:
        from personal_assistant.app.channels import Channels

        return Channels(self.engine, self.settings, self.clock)

    @cached_property
    def calendars(self) -> Calendars:
        from personal_assistant.app.calendars import Calendars

        return Calendars(self.engine, self.settings, self.clock)

    @cached_property
    def digests(self) -> Digests:
        from personal_assistant.app.digests import Digests

        return Digests(self.engine, self.settings, self.clock)

    @cached_property
    def keys(self) -> Keys:
        from personal_assistant.app.keys import Keys

        return Keys(self.engine, self.settings, self.clock)

    @cached_property
    def exports(self) -> Exports:
        from personal_assistant.app.exports import Exports

        return Exports(self.engine, self.settings, self.clock)

    @cached_property
    def alerts(self) -> Alerts:
        from personal_assistant.app.alerts import Alerts

        return Alerts(self.engine, self.settings, self.clock)

    @cached_property
    def dashboard(self) -> Dashboard:
        from personal_assistant.app.dashboard import Dashboard

        return Dashboard(self.engine, self.settings, self.clock)

    @cached_property
    def system(self) -> System:
        from personal_assistant.app.system import System

        return System(self.engine, self.settings, self.clock)

    @cached_property
    def users(self) -> Users:
        from personal_assistant.app.users import Users

        return Users(self.engine, self.settings, self.clock)

    @cached_property
    def idempotency(self) -> Idempotency:
        from personal_assistant.app.idempotency import Idempotency

        return Idempotency(self.engine, self.settings, self.clock)

    @cached_property
    def versions(self) -> Versions:
        from personal_assistant.app.versions import Versions

        return Versions(self.engine, self.settings, self.clock)

    @cached_property
    def events(self) -> Events:
        from personal_assistant.app.events import Events

        return Events(self.engine, self.settings, self.clock)

    async def close(self) -> None:
        if self._owns_engine:
            await self.engine.dispose()
