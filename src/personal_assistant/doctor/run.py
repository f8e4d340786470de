"""One ``pa doctor`` run: read the facts, judge them, and (when asked) fire the canaries.

Read only unless :attr:`Options.canary` is set: the canaries write a reserved user's rows and
delete them afterwards. Sections whose facts cannot be read (the database is away) are
skipped, not failed twice: the check that could not reach it failed already.
"""

from __future__ import annotations

import asyncio
import platform
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version

from celery import Celery
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant import __version__
from personal_assistant.config import Settings
from personal_assistant.database.migrate import HEAD
from personal_assistant.doctor import (
    broker_checks,
    canary_checks,
    database_checks,
    process_checks,
    settings_checks,
)
from personal_assistant.doctor.canary import Canary
from personal_assistant.doctor.database_facts import DatabaseFacts, read_database
from personal_assistant.doctor.process_checks import Bounds
from personal_assistant.doctor.remote import RemoteFacts, read_remote
from personal_assistant.doctor.report import Check, Report, failed, one_line, skipped
from personal_assistant.health.heartbeat import STALE_AFTER_BEATS
from personal_assistant.redaction import mask_url
from personal_assistant.workers.broker_facts import BrokerFacts, read_broker
from personal_assistant.workers.broker_ping import broker_kind
from personal_assistant.workers.celery_app import celery_config
from personal_assistant.workers.utils.snapshot_reads import take_snapshot


@dataclass(frozen=True)
class Options:
    """What to run: ``quick`` (no remote control: a healthcheck), ``canary`` (writes rows),
    ``deep`` (a failing canary and a burst of ``burst_runs``), and the bounds."""

    quick: bool = False
    canary: bool = False
    deep: bool = False
    burst_runs: int = 200
    timeout_s: float = 60.0
    channels_of: int | None = None  # deep: a test message through each channel of this user
    bounds: Bounds | None = None  # None: from the settings
    extra: dict[str, str] = field(default_factory=dict)


def bounds_for(settings: Settings) -> Bounds:
    """Bounds that follow the settings: stale after ``STALE_AFTER_BEATS`` heartbeats, and an
    expired lease unreaped after two reaper intervals and a tick."""
    return Bounds(
        max_heartbeat_age_s=STALE_AFTER_BEATS * settings.heartbeat_interval_seconds,
        reaper_grace_s=2 * settings.reaper_interval_seconds + settings.tick_seconds + 5,
    )


def client_app(settings: Settings) -> Celery:
    """A Celery app of doctor's own, on the deployment's broker (the global one stays as is)."""
    app = Celery("pa-doctor", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


async def diagnose(
    settings: Settings,
    engine: AsyncEngine,
    clock: Callable[[], datetime],
    options: Options = Options(),
) -> Report:
    started = clock()
    bounds = options.bounds or bounds_for(settings)
    checks: list[Check] = settings_checks.settings_checks(settings)
    database = await read_database(engine, mask_url(settings.database_url), HEAD)
    checks += database_checks.database_checks(database)
    app = client_app(settings)
    broker = await asyncio.to_thread(read_broker, settings, app)
    checks += broker_checks.broker_checks(broker)
    checks += await _processes(settings, engine, clock, app, database, broker, bounds, options)
    if options.canary:
        checks += await _canaries(settings, engine, clock, database, options)
    environment = _environment(settings, database, broker) | options.extra
    return Report(tuple(checks), environment, started, clock())


async def _processes(
    settings: Settings,
    engine: AsyncEngine,
    clock: Callable[[], datetime],
    app: Celery,
    database: DatabaseFacts,
    broker: BrokerFacts,
    bounds: Bounds,
    options: Options,
) -> list[Check]:
    title = "Workers and scheduler"
    if not database.reachable:
        return [skipped("workers", title, "the database is unreachable")]
    if database.revision != database.head:
        why = "the schema is not this code's (database.migrations): its rows cannot be read"
        return [skipped("workers", title, why)]
    try:
        snapshot = await take_snapshot(engine, clock())
    except Exception as exc:  # the database went away meanwhile, or refuses the read
        why = f"cannot read progress: {one_line(exc)}"
        return [failed("workers", title, why, "pa status; is the database reachable and at head?")]
    remote: RemoteFacts | None = None
    if broker.kind == "embedded":
        remote = RemoteFacts(supported=False)
    elif not options.quick and broker.reachable:
        beating = len(snapshot.live_workers(bounds.max_heartbeat_age_s))
        remote = await asyncio.to_thread(read_remote, app, expected=beating)
    return process_checks.process_checks(snapshot, bounds, __version__, remote)


async def _canaries(
    settings: Settings,
    engine: AsyncEngine,
    clock: Callable[[], datetime],
    database: DatabaseFacts,
    options: Options,
) -> list[Check]:
    if not database.reachable or database.revision != database.head:
        why = "the database is unreachable or not at the newest migration"
        return [skipped("canary.run", "A canary task runs end to end", why)]
    canary = Canary(settings, engine, clock)
    try:
        checks = [canary_checks.canary(await canary.fire(timeout_s=options.timeout_s))]
        if options.deep:
            failing = await canary.fire(fail=True, timeout_s=options.timeout_s)
            checks.append(canary_checks.failing_canary(failing))
            burst = await canary.burst(options.burst_runs, timeout_s=options.timeout_s)
            checks.append(canary_checks.burst(burst))
        return checks
    finally:
        await canary.cleanup()


def _environment(
    settings: Settings, database: DatabaseFacts, broker: BrokerFacts
) -> dict[str, str]:
    described = settings.describe()
    return {
        "deployment": "embedded" if settings.embedded else broker_kind(settings),
        "host": socket.gethostname(),
        "database": described["database"] + (f" ({database.version})" if database.version else ""),
        "broker": described["broker"] + (f" ({broker.version})" if broker.version else ""),
        "result backend": described["result_backend"],
        "agent": described["agent"],
        "versions": (
            f"personal_assistant {__version__}, celery {version('celery')}, "
            f"kombu {version('kombu')}, python {platform.python_version()}"
        ),
    }
