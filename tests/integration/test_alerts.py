"""The built-in alert evaluator on real databases (PostgreSQL and SQLite).

The facts are the input, built by hand; the episodes (``alerts`` rows) and the admins'
notifications (outbox rows) are what is checked, evaluation by evaluation with a chosen ``now``.
Then the facts as read from a real database, the façade's test alert, and ``pa alerts list``
and ``pa user add|edit --admin`` through the CLI. Nothing is delivered here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from personal_assistant.alerts.evaluate import Evaluation, Timing, evaluate
from personal_assistant.alerts.facts import Rates, read_rates
from personal_assistant.alerts.rules import RULES, Facts, Thresholds
from personal_assistant.app.assistant import Assistant
from personal_assistant.cli import session
from personal_assistant.cli.main import app as pa_app
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import Alert, TaskRun
from personal_assistant.errors import ValidationError
from personal_assistant.notifications import channel_store
from personal_assistant.notifications.transports import apprise_urls
from personal_assistant.tasks.manager import AITaskManager
from personal_assistant.workers.alerting import evaluate_now, read_facts
from support.celery_messages import message_body
from support.keys import CIPHER
from support.services import REDIS_URL
from support.stack import Db, client_app, run, settings_for

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
OPEN_AFTER = timedelta(seconds=120)
COOLDOWN = timedelta(hours=1)
TIMING = Timing(open_after=OPEN_AFTER, cooldown=COOLDOWN)
LIMITS = Thresholds()
QUEUES = ("ai_tasks", "email_tasks", "file_tasks", "sync_tasks", "maintenance_tasks")
KEY = "NoConsumerOnQueue:ai_tasks"
HOOK_URL = "json://127.0.0.1:9/alerts"  # stored only: nothing is delivered in these tests
#: A broker on a port where nothing listens: the facts say it is down, nothing else fails.
NO_BROKER = "redis://127.0.0.1:1/0"

HEALTHY = Facts(
    consumers=dict.fromkeys(QUEUES, 1),
    schedulers_live=1,
    scheduler_age_s=5.0,
    broker_up=True,
    oldest_queued_age_s=0.0,
    tasks_overdue=0,
    channels_broken=0,
)
NO_AI_WORKER = replace(HEALTHY, consumers={**HEALTHY.consumers, "ai_tasks": 0})


@pytest.fixture
def db(url: str) -> Iterator[Db]:
    handle = Db(url)
    yield handle
    handle.close()


@dataclass(frozen=True)
class People:
    admin: int  # an admin with a webhook channel "hook"
    quiet_admin: int  # an admin with no channel: told in-app only
    user: int  # not an admin, with a channel: never told


async def _add_hook(url: str, user_id: int) -> None:
    engine = make_async_engine(url, pooled=False)
    try:
        async with engine.begin() as conn:
            spec = apprise_urls.validate("hook", HOOK_URL)
            await channel_store.add(conn, user_id, spec, cipher=CIPHER, now=CREATED)
    finally:
        await engine.dispose()


async def _people(url: str) -> People:
    settings = settings_for({"DATABASE_URL": url})
    async with AITaskManager(settings, clock=lambda: CREATED) as manager:
        ada = await manager.create_user("Ada", is_admin=True)
        bob = await manager.create_user("Bob", is_admin=True)
        carol = await manager.create_user("Carol")
    for user in (ada, carol):
        await _add_hook(url, user.id)
    return People(ada.id, bob.id, carol.id)


@pytest.fixture
def people(url: str) -> People:
    return run(_people(url))


def evaluate_at(url: str, facts: Facts, now: datetime) -> Evaluation:
    async def go() -> Evaluation:
        engine = make_async_engine(url, pooled=False)
        try:
            return await evaluate(engine, facts, LIMITS, TIMING, now)
        finally:
            await engine.dispose()

    return run(go())


def episodes(db: Db) -> list[Alert]:
    with Session(db.engine) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def told(db: Db) -> list[tuple[int, str, str, str]]:
    """(user, channel, status, dedupe key) of every notification, in order."""
    return [
        (int(user), str(channel), str(status), str(key))
        for user, channel, status, key in db.rows(
            "SELECT user_id, channel, status, dedupe_key FROM notifications ORDER BY id"
        )
    ]


def to_admins(people: People, key: str) -> set[tuple[int, str, str, str]]:
    """The rows one alert message makes: each admin in-app, and the admin's webhook."""
    return {
        (people.admin, "in_app", "delivered", key),
        (people.admin, "hook", "pending", key),
        (people.quiet_admin, "in_app", "delivered", key),
    }


def hook_ids(db: Db, key: str) -> tuple[int, ...]:
    return tuple(
        int(i)
        for (i,) in db.rows(
            "SELECT id FROM notifications WHERE channel = 'hook' AND dedupe_key = :key", key=key
        )
    )


def test_an_alert_opens_once_resolves_once_and_waits_out_its_cooldown(
    url: str, db: Db, people: People
) -> None:
    first = evaluate_at(url, NO_AI_WORKER, T0)
    assert (first.firing, first.opened, first.resolved, first.pending) == ((KEY,), (), (), ())
    (pending,) = episodes(db)
    assert (pending.key, pending.rule, pending.status) == (KEY, "NoConsumerOnQueue", "pending")
    assert (pending.severity, pending.value) == ("critical", "0 consumers")
    assert (pending.started_at, pending.seen_at, pending.opened_at) == (T0, T0, None)
    assert told(db) == []

    assert evaluate_at(url, NO_AI_WORKER, T0 + timedelta(seconds=60)).opened == ()
    (still,) = episodes(db)
    assert (still.id, still.status, still.seen_at) == (
        pending.id,
        "pending",
        T0 + timedelta(seconds=60),
    )
    assert told(db) == []

    opening = T0 + timedelta(seconds=130)
    opened = evaluate_at(url, NO_AI_WORKER, opening)
    opened_key = f"alert:{pending.id}:opened"
    assert (opened.opened, opened.resolved) == ((KEY,), ())
    assert set(told(db)) == to_admins(people, opened_key)
    assert len(told(db)) == 3
    assert opened.pending == hook_ids(db, opened_key)
    (episode,) = episodes(db)
    assert (episode.status, episode.opened_at) == ("open", opening)
    titles = {t for (t,) in db.rows("SELECT title FROM notifications")}
    assert titles == {"[critical] No live worker consumes ai_tasks"}
    body = db.scalar("SELECT body FROM notifications WHERE channel = 'hook'")
    assert "Alert NoConsumerOnQueue opened" in body and "pa worker -Q" in body

    for seconds in (160, 190, 1000):
        again = evaluate_at(url, NO_AI_WORKER, T0 + timedelta(seconds=seconds))
        assert (again.firing, again.opened, again.pending) == ((KEY,), (), ())
    assert len(told(db)) == 3

    cleared_at = T0 + timedelta(seconds=1030)
    cleared = evaluate_at(url, HEALTHY, cleared_at)
    resolved_key = f"alert:{pending.id}:resolved"
    assert (cleared.firing, cleared.opened, cleared.resolved) == ((), (), (KEY,))
    assert cleared.pending == hook_ids(db, resolved_key)
    assert set(told(db)) == to_admins(people, opened_key) | to_admins(people, resolved_key)
    (episode,) = episodes(db)
    assert (episode.status, episode.resolved_at) == ("resolved", cleared_at)
    resolved_title = db.scalar(
        "SELECT title FROM notifications WHERE channel = 'hook' AND dedupe_key = :key",
        key=resolved_key,
    )
    assert resolved_title == "[resolved] No live worker consumes ai_tasks"
    assert evaluate_at(url, HEALTHY, cleared_at + timedelta(seconds=30)).resolved == ()
    assert len(told(db)) == 6

    back_at = cleared_at + timedelta(minutes=10)
    back = evaluate_at(url, NO_AI_WORKER, back_at)
    assert (back.opened, back.pending) == ((), ())
    old, new = episodes(db)
    assert (old.id, old.status) == (pending.id, "resolved")
    assert (new.key, new.status, new.started_at) == (KEY, "pending", back_at)
    cooled = opening + COOLDOWN
    for at in (back_at + OPEN_AFTER, cooled - timedelta(seconds=1)):
        assert evaluate_at(url, NO_AI_WORKER, at).opened == ()  # held long enough, in cooldown
    assert len(told(db)) == 6

    reopened = evaluate_at(url, NO_AI_WORKER, cooled)
    assert reopened.opened == (KEY,)
    first_episode = to_admins(people, opened_key) | to_admins(people, resolved_key)
    reopened_key = f"alert:{new.id}:opened"
    assert set(told(db)) == first_episode | to_admins(people, reopened_key)
    assert len(told(db)) == 9
    assert [(e.status, e.opened_at) for e in episodes(db)] == [
        ("resolved", opening),
        ("open", cooled),
    ]


def test_a_condition_that_clears_before_opening_is_dropped_unsaid(
    url: str, db: Db, people: People
) -> None:
    evaluate_at(url, NO_AI_WORKER, T0)
    assert [e.status for e in episodes(db)] == ["pending"]
    cleared = evaluate_at(url, HEALTHY, T0 + OPEN_AFTER - timedelta(seconds=1))
    assert (cleared.firing, cleared.opened, cleared.resolved, cleared.pending) == ((), (), (), ())
    assert episodes(db) == []
    assert told(db) == []
    # It comes back: a new episode, counted from its own start, with no cooldown to wait.
    again_at = T0 + timedelta(minutes=5)
    evaluate_at(url, NO_AI_WORKER, again_at)
    assert evaluate_at(url, NO_AI_WORKER, again_at + OPEN_AFTER).opened == (KEY,)
    assert len(told(db)) == 3


def test_each_alert_has_its_own_episode_and_no_admin_means_no_row(url: str, db: Db) -> None:
    run(_add_nobody(url))
    both = replace(NO_AI_WORKER, broker_up=False)
    evaluate_at(url, both, T0)
    done = evaluate_at(url, both, T0 + OPEN_AFTER)
    assert done.opened == ("BrokerDown", KEY)
    assert sorted((e.key, e.status) for e in episodes(db)) == [
        ("BrokerDown", "open"),
        (KEY, "open"),
    ]
    assert told(db) == []  # nobody to tell: the episodes go on, no notification is written
    later = evaluate_at(url, NO_AI_WORKER, T0 + OPEN_AFTER + timedelta(seconds=30))
    assert later.resolved == ("BrokerDown",)


async def _add_nobody(url: str) -> None:
    """A user who is no admin (the deployment has no admin)."""
    settings = settings_for({"DATABASE_URL": url})
    async with AITaskManager(settings, clock=lambda: CREATED) as manager:
        carol = await manager.create_user("Carol")
    await _add_hook(url, carol.id)


def test_two_evaluators_at_once_tell_each_admin_once(url: str, db: Db, people: People) -> None:
    if url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: no two evaluations overlap")

    async def both(now: datetime) -> list[Evaluation]:
        engines = [make_async_engine(url, pooled=False) for _ in range(2)]
        try:
            return list(
                await asyncio.gather(
                    *(evaluate(e, NO_AI_WORKER, LIMITS, TIMING, now) for e in engines)
                )
            )
        finally:
            for engine in engines:
                await engine.dispose()

    started = run(both(T0))
    assert [e.firing for e in started] == [(KEY,), (KEY,)]
    (pending,) = episodes(db)
    assert pending.status == "pending"

    opened = run(both(T0 + OPEN_AFTER))
    assert sorted(e.opened for e in opened) == [(), (KEY,)]
    assert sorted(len(e.pending) for e in opened) == [0, 1]
    assert set(told(db)) == to_admins(people, f"alert:{pending.id}:opened")
    assert len(told(db)) == 3
    assert [e.status for e in episodes(db)] == ["open"]

    still = run(both(T0 + OPEN_AFTER + timedelta(seconds=30)))
    assert [(e.opened, e.resolved) for e in still] == [((), ()), ((), ())]
    assert len(told(db)) == 3


# The facts, read from a real database ----------------------------------------------------------

WINDOW = timedelta(minutes=10)
SINCE = T0 - WINDOW
FAILED_AT = (0, 3, 6, 9)


def _seed_task(url: str) -> tuple[int, int]:
    async def go() -> tuple[int, int]:
        settings = settings_for({"DATABASE_URL": url})
        async with AITaskManager(settings, clock=lambda: T0 - timedelta(days=1)) as manager:
            ada = await manager.create_user("Ada")
            made = await manager.create_task(
                ada.id,
                "Briefing",
                schedule={"kind": "once", "at": (T0 + timedelta(days=1)).isoformat()},
            )
        return ada.id, made.id

    return run(go())


class Runs:
    """``task_runs`` rows of one task, written directly; ``late``: seconds between the run's
    due time and its start."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.user_id, self.task_id = _seed_task(url)
        self.rows: list[dict[str, Any]] = []

    def add(self, state: str, attempt: int, started: datetime, late: float, **values: Any) -> None:
        due = started - timedelta(seconds=late)
        self.rows.append(
            {
                "task_id": self.task_id,
                "user_id": self.user_id,
                "scheduled_for": due,
                "queued_at": due,
                "state": state,
                "attempt": attempt,
                "started_at": started,
                "finished_at": None,
                "result": None,
                "error": None,
                **values,
            }
        )

    def write(self) -> None:
        db = Db(self.url)
        try:
            with Session(db.engine) as session, session.begin():
                session.execute(insert(TaskRun), self.rows)
        finally:
            db.close()


def _seed_window(url: str) -> None:
    runs = Runs(url)
    # 12 first attempts started and finished in the window, late by 0..11 s; 4 of them failed.
    for i in range(12):
        started = SINCE + timedelta(seconds=60 + 30 * i)
        finished = started + timedelta(seconds=5)
        if i in FAILED_AT:
            runs.add("failed", 1, started, i, finished_at=finished, error="failed after 1 attempt")
        else:
            runs.add("succeeded", 1, started, i, finished_at=finished, result="ok")
    # Started before the window, finished in it: one more finished run, no attempt in it.
    runs.add(
        "succeeded", 1, SINCE - timedelta(seconds=30), 0, finished_at=SINCE + timedelta(seconds=5)
    )
    # A first attempt that failed and will be retried: an attempt error, 10 s late.
    runs.add("retrying", 1, T0 - timedelta(seconds=100), 10, error="attempt 1 failed: 503")
    # A second attempt under way: an attempt, no error, no lateness sample (not the first).
    runs.add("running", 2, T0 - timedelta(seconds=20), 400)
    # A first attempt deferred by the rate limit (its claim's attempt taken back to 0).
    runs.add(
        "retrying", 0, T0 - timedelta(seconds=50), 65, error="deferred, no attempt made: limit"
    )
    # Long before the window: counts in nothing.
    old = T0 - timedelta(hours=2)
    runs.add("failed", 1, old, 300, finished_at=old + timedelta(seconds=5), error="failed")
    runs.write()


def rates_at(url: str, now: datetime) -> Rates:
    async def go() -> Rates:
        engine = make_async_engine(url, pooled=False)
        try:
            return await read_rates(engine, now, window=WINDOW)
        finally:
            await engine.dispose()

    return run(go())


def test_read_rates_counts_the_windows_runs(url: str) -> None:
    _seed_window(url)
    rates = rates_at(url, T0)
    assert (rates.finished, rates.failed) == (13, 4)
    assert (rates.attempts, rates.attempt_errors) == (14, 5)
    assert sorted(rates.lateness_s) == sorted([float(i) for i in range(12)] + [10.0])
    later = rates_at(url, T0 + timedelta(hours=1))  # the window has moved past every run
    assert (later.finished, later.attempts, later.lateness_s) == (0, 0, [])


def test_a_deferred_retry_is_no_lateness_sample(url: str) -> None:
    """A run whose first attempt failed, claimed again (attempt 2, started now) and deferred
    by the rate limit: its attempt goes back to 1, but it made no attempt and its start is not
    a first attempt's, so it counts in none of the rates."""
    runs = Runs(url)
    runs.add(
        "retrying",
        1,
        T0 - timedelta(seconds=40),
        90,
        error="deferred, no attempt made: 10 runs a minute at most",
    )
    runs.write()
    rates = rates_at(url, T0)
    assert (rates.attempts, rates.attempt_errors, rates.finished) == (0, 0, 0)
    assert rates.lateness_s == []


def test_read_facts_puts_the_deployment_and_the_rates_together(url: str, db: Db) -> None:
    _seed_window(url)
    settings = settings_for(
        {"DATABASE_URL": url, "REDIS_URL": NO_BROKER, "ALERT_WINDOW_SECONDS": "600"}
    )

    async def go() -> tuple[Facts, Evaluation]:
        engine = make_async_engine(url, pooled=False)
        try:
            app = client_app(settings)
            facts = await read_facts(settings, engine, T0, app)
            evaluation = await evaluate_now(settings, engine, T0, app)
            return facts, evaluation
        finally:
            await engine.dispose()

    facts, evaluation = run(go())
    assert (facts.finished, facts.failed, facts.attempts, facts.attempt_errors) == (13, 4, 14, 5)
    assert len(facts.lateness_s) == 13
    assert facts.broker_up is False
    assert dict(facts.consumers) == dict.fromkeys(QUEUES, 0)  # no worker beats here
    assert (facts.schedulers_live, facts.scheduler_age_s) == (0, None)
    assert (facts.tasks_overdue, facts.channels_broken, facts.oldest_queued_age_s) == (0, 0, 0.0)
    assert dict(facts.oldest_message_age_s) == {}
    # The settings' evaluation of the same facts: 4 of 13 failed is above 20 %, a p99 of 11 s
    # above 5 s; 5 errors in 14 attempts is not above 50 %. Nothing opens at once.
    assert set(evaluation.firing) == {
        "BrokerDown",
        "FailureRatioHigh",
        "LatenessP99High",
        "SchedulerSilent",
        *(f"NoConsumerOnQueue:{q}" for q in QUEUES),
    }
    assert evaluation.opened == ()
    assert {e.status for e in episodes(db)} == {"pending"}
    assert len(episodes(db)) == len(evaluation.firing)


# The façade and the CLI ------------------------------------------------------------------------


def test_the_test_alert_needs_an_admin_and_goes_to_each_admin_channel(
    url: str, db: Db, redis_prefix: str
) -> None:
    settings = settings_for(
        {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": redis_prefix}
    )

    async def nobody() -> None:
        async with Assistant(settings, clock=lambda: T0) as app:
            carol = await app.tasks.create_user("Carol")
            await _add_hook(url, carol.id)
            await app.alerts.test()

    with pytest.raises(ValidationError) as refused:
        run(nobody())
    assert refused.value.field == "is_admin"
    assert "pa user edit ID --admin" in refused.value.message
    assert told(db) == []

    async def admins() -> tuple[dict[int, list[str]], int, int]:
        async with Assistant(settings, clock=lambda: T0) as app:
            ada = await app.tasks.create_user("Ada", is_admin=True)
            await _add_hook(url, ada.id)
            bob = await app.tasks.create_user("Bob")
            await app.tasks.set_admin(bob.id, True)
            sent = await app.alerts.test()
        return sent.recipients, ada.id, bob.id

    recipients, ada, bob = run(admins())
    assert recipients == {ada: ["in_app", "hook"], bob: ["in_app"]}
    key = f"alert-test:{T0.isoformat()}"
    assert sorted(told(db)) == sorted(
        [
            (ada, "in_app", "delivered", key),
            (ada, "hook", "pending", key),
            (bob, "in_app", "delivered", key),
        ]
    )
    assert {t for (t,) in db.rows("SELECT title FROM notifications")} == {"[test] Alerts reach you"}
    # The webhook's row is sent for delivery (email_tasks), like any pending notification.
    client = redis.Redis.from_url(REDIS_URL)
    try:
        sent_ids = []
        for raw in client.lrange(f"{redis_prefix}email_tasks", 0, -1):
            args, _kwargs, _embed = message_body(json.loads(raw))
            sent_ids.extend(args[0])
    finally:
        client.close()
    assert sent_ids == list(hook_ids(db, key))


@pytest.fixture
def cli(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """``pa`` in-process on this test's database, with a broker that is down."""
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("REDIS_URL", NO_BROKER)
    monkeypatch.setenv("PA_HOME", str(tmp_path))
    monkeypatch.delenv("PA_USER", raising=False)
    session.settings.cache_clear()
    yield CliRunner()
    session.settings.cache_clear()


def pa_json(cli: CliRunner, *args: str) -> Any:
    done = cli.invoke(pa_app, [*args, "--json"])
    assert done.exit_code == 0, (done.output, done.exception)
    return json.loads(done.stdout)


def test_pa_user_admin_flags_and_pa_alerts_list(
    cli: CliRunner, url: str, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = pa_json(cli, "user", "add", "Ada", "--admin")
    bob = pa_json(cli, "user", "add", "Bob")
    assert (ada["display_name"], ada["is_admin"], bob["is_admin"]) == ("Ada", True, False)
    assert pa_json(cli, "user", "edit", str(bob["id"]), "--admin")["is_admin"] is True
    assert pa_json(cli, "user", "edit", str(ada["id"]), "--no-admin")["is_admin"] is False
    unsaid = cli.invoke(pa_app, ["user", "edit", str(ada["id"])])
    assert isinstance(unsaid.exception, ValidationError)
    assert unsaid.exception.field == "--admin"
    admins = {u["id"]: u["is_admin"] for u in pa_json(cli, "user", "list")}
    assert admins == {ada["id"]: False, bob["id"]: True}

    down = replace(NO_AI_WORKER, broker_up=False)
    evaluate_at(url, down, T0)
    evaluate_at(url, down, T0 + OPEN_AFTER)
    evaluate_at(url, NO_AI_WORKER, T0 + timedelta(minutes=5))  # the broker is back

    seen = pa_json(cli, "alerts", "list")
    assert (seen["enabled"], seen["admins"]) == (True, 1)
    assert (seen["interval_seconds"], seen["open_after_seconds"], seen["cooldown_seconds"]) == (
        30.0,
        120.0,
        3600.0,
    )
    rules = {r["rule"]: r for r in seen["rules"]}
    assert [r["rule"] for r in seen["rules"]] == [r.name for r in RULES]
    assert rules["FailureRatioHigh"]["condition"].startswith("more than 20% of the runs")
    assert rules["SchedulerSilent"]["condition"].endswith("older than 60 s")
    assert rules["NoConsumerOnQueue"]["severity"] == "critical"
    # Read live: no worker or scheduler beats here and the broker is down.
    assert rules["BrokerDown"]["holding"] == ["BrokerDown"]
    assert rules["SchedulerSilent"]["holding"] == ["SchedulerSilent"]
    assert sorted(rules["NoConsumerOnQueue"]["holding"]) == sorted(
        f"NoConsumerOnQueue:{q}" for q in QUEUES
    )
    assert rules["FailureRatioHigh"]["holding"] == []
    assert seen["alerts"] == [
        {
            "key": KEY,
            "status": "open",
            "summary": "No live worker consumes ai_tasks",
            "value": "0 consumers",
            "started_at": T0.isoformat(),
            "opened_at": (T0 + OPEN_AFTER).isoformat(),
            "resolved_at": None,
        },
        {
            "key": "BrokerDown",
            "status": "resolved",
            "summary": "The broker does not answer",
            "value": "unreachable",
            "started_at": T0.isoformat(),
            "opened_at": (T0 + OPEN_AFTER).isoformat(),
            "resolved_at": (T0 + timedelta(minutes=5)).isoformat(),
        },
    ]

    monkeypatch.setenv("ALERT_INTERVAL_SECONDS", "0")
    session.settings.cache_clear()
    assert pa_json(cli, "alerts", "list")["enabled"] is False
    text = cli.invoke(pa_app, ["alerts", "list"])
    assert text.exit_code == 0, text.output
    assert "The evaluator is off (ALERT_INTERVAL_SECONDS=0)" in text.stdout
