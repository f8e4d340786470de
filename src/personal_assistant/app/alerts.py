"""The alerts operations of the façade: the rules and their state (``pa alerts list``), and a
test alert to every admin (``pa alerts test``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from personal_assistant.app._base import Part
from personal_assistant.database.failures import explained
from personal_assistant.errors import ValidationError

__all__ = ["AlertState", "Alerts", "AlertsOverview", "Episode", "TestSent"]


@dataclass(frozen=True)
class AlertState:
    """One rule: what it checks, and what holds of it now (live) and in the episodes."""

    rule: str
    severity: str
    condition: str
    #: The keys for which the condition holds at this reading (``NoConsumerOnQueue:ai_tasks``).
    holding: tuple[str, ...]


@dataclass(frozen=True)
class Episode:
    key: str
    status: str
    summary: str
    value: str
    started_at: datetime
    opened_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class AlertsOverview:
    enabled: bool
    interval_s: float
    open_after_s: float
    cooldown_s: float
    admins: int
    rules: tuple[AlertState, ...]
    #: Unresolved episodes first, then the newest resolved ones.
    episodes: tuple[Episode, ...]


@dataclass(frozen=True)
class TestSent:
    #: Admin id -> the channels the test went to.
    recipients: dict[int, list[str]]


class Alerts(Part):
    """The built-in alert evaluator, seen from outside (:mod:`personal_assistant.alerts`)."""

    async def overview(self, *, history: int = 20) -> AlertsOverview:
        """The rules with their thresholds, what holds now (read live from the database and the
        broker), the open and pending episodes and the ``history`` newest resolved ones."""
        from sqlalchemy import func, select

        from personal_assistant.alerts import run
        from personal_assistant.alerts.rules import RULES, firing
        from personal_assistant.core.states import AlertStatus
        from personal_assistant.database.models import Alert, User
        from personal_assistant.doctor.run import client_app
        from personal_assistant.workers.alerting import read_facts

        settings = self.settings
        limits = run.thresholds(settings)
        with explained("cannot read the database at", settings.database_url):
            facts = await read_facts(
                settings,
                self.engine,
                self.clock(),
                client_app(settings),
            )
            async with self.engine.connect() as conn:
                admins = await conn.scalar(select(func.count()).where(User.is_admin))
                columns = (
                    Alert.key,
                    Alert.status,
                    Alert.summary,
                    Alert.value,
                    Alert.started_at,
                    Alert.opened_at,
                    Alert.resolved_at,
                )
                open_rows = (
                    await conn.execute(
                        select(*columns)
                        .where(Alert.status != AlertStatus.RESOLVED)
                        .order_by(Alert.started_at)
                    )
                ).all()
                past_rows = (
                    await conn.execute(
                        select(*columns)
                        .where(Alert.status == AlertStatus.RESOLVED)
                        .order_by(Alert.resolved_at.desc(), Alert.id.desc())
                        .limit(history)
                    )
                ).all()
        held = firing(facts, limits)
        rules = tuple(
            AlertState(
                rule.name,
                rule.severity,
                rule.condition.format(threshold=limits.of(rule.name)),
                tuple(key for key, f in held.items() if f.rule is rule),
            )
            for rule in RULES
        )
        return AlertsOverview(
            enabled=settings.alert_interval_seconds > 0,
            interval_s=settings.alert_interval_seconds,
            open_after_s=settings.alert_open_after_seconds,
            cooldown_s=settings.alert_cooldown_seconds,
            admins=int(admins or 0),
            rules=rules,
            episodes=tuple(Episode(*row) for row in (*open_rows, *past_rows)),
        )

    async def test(self) -> TestSent:
        """Send a test alert to every admin on each of their channels; an error names
        ``is_admin`` when there is no admin to tell."""
        from personal_assistant.alerts import messages
        from personal_assistant.alerts.evaluate import admin_channels, notify_admins
        from personal_assistant.doctor.run import client_app
        from personal_assistant.workers.dispatch import publish_notifications

        now = self.clock()
        with explained("cannot use the database at", self.settings.database_url):
            async with self.engine.begin() as conn:
                recipients = dict(await admin_channels(conn))
                if not recipients:
                    raise ValidationError(
                        "no admin user to tell: make one with `pa user edit ID --admin` "
                        "(or `pa user add NAME --admin`)",
                        field="is_admin",
                    )
                key = f"alert-test:{now.isoformat()}"
                pending = await notify_admins(conn, messages.test(now), key, now)
        if pending:
            await asyncio.to_thread(publish_notifications, client_app(self.settings), pending)
        return TestSent(recipients)
