"""``Assistant.users``: edit a user's fields, remove a user with everything they own; on
PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from personal_assistant.app.assistant import Assistant
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.notifications.transports.apprise_urls import validate
from support.keys import CHANNEL_KEY
from support.stack import Db, run, settings_for

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _app(url: str) -> Assistant:
    env = {"DATABASE_URL": url, "CHANNEL_KEYS": CHANNEL_KEY, "OUTBOUND_ALLOW": "127.0.0.0/8"}
    return Assistant(settings_for(env), clock=lambda: NOW)


def test_edit_changes_the_fields_given_and_moves_the_digest_with_the_zone(url: str) -> None:
    async def go() -> None:
        async with _app(url) as app:
            ada = await app.tasks.create_user("Ada", email="ada@example.org", timezone="UTC")
            await app.digests.set(ada, time(20, 0), None)
            edited = await app.users.edit(ada.id, display_name=" Ada L. ", timezone="Asia/Tokyo")
            assert (edited.display_name, edited.email) == ("Ada L.", "ada@example.org")
            # 20:00 in Tokyo is 11:00 UTC: the next one is tomorrow's.
            assert edited.next_digest_at == datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
            cleared = await app.users.edit(ada.id, email="", is_admin=True)
            assert (cleared.email, cleared.is_admin) == (None, True)
            assert (await app.tasks.get_user(ada.id)).timezone == "Asia/Tokyo"
            for fields, field in (
                ({"email": "not-an-address"}, "email"),
                ({"phone": "+1"}, "phone"),
                ({"timezone": "Nowhere/City"}, "timezone"),
                ({"display_name": "\u202eevil"}, "display_name"),
                ({}, "user"),
            ):
                with pytest.raises(ValidationError) as refused:
                    await app.users.edit(ada.id, **fields)  # type: ignore[arg-type]
                assert refused.value.field == field
            with pytest.raises(NotFoundError):
                await app.users.edit(ada.id + 1, display_name="x")
            with pytest.raises(NotFoundError):
                await app.users.edit(2**70, display_name="x")

    run(go())


def test_remove_takes_what_the_user_owns_and_nothing_else(url: str) -> None:
    db = Db(url)
    daily = {"kind": "daily", "times": ["09:00"]}

    async def seed() -> tuple[int, int]:
        async with _app(url) as app:
            ada = await app.tasks.create_user("Ada")
            bob = await app.tasks.create_user("Bob")
            for owner in (ada, bob):
                await app.channels.add(owner.id, validate("hook", "json://127.0.0.1:9/x"))
                await app.keys.create(owner.id, "laptop")
                task = await app.tasks.create_task(owner.id, "t", schedule=daily)
                await app.tasks.run_now(task.id, owner.id)
            return ada.id, bob.id

    async def remove(user_id: int) -> tuple[int, int, int, int]:
        async with _app(url) as app:
            before = await app.users.footprint(user_id)
            gone = await app.users.remove(user_id)
            assert gone == before
            with pytest.raises(NotFoundError):
                await app.users.remove(user_id)
            return gone.tasks, gone.runs, gone.channels, gone.keys

    try:
        ada, bob = run(seed())
        assert run(remove(bob)) == (1, 1, 1, 1)
        left = "SELECT (SELECT count(*) FROM {0} WHERE user_id = :u)"
        for table in ("ai_tasks", "notification_channels", "api_keys", "task_runs"):
            assert db.rows(left.format(table), u=bob)[0][0] == 0
            assert db.rows(left.format(table), u=ada)[0][0] == 1
        assert [r[0] for r in db.rows("SELECT id FROM users")] == [ada]
    finally:
        db.close()
