"""API keys on both backends: made, listed, revoked and checked through the façade
(``Assistant.keys``) and ``pa user key``, with a clock of the test's choosing.

What must hold: the key is shown once and stored nowhere (only its prefix and hash), another
user's key is not found, a revoked or malformed key is refused with the one same error, a
malformed or oversized key costs no query, and ``last_used_at`` is written at most once a
minute.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from typer.testing import CliRunner

from personal_assistant.app.assistant import Assistant
from personal_assistant.auth import tokens
from personal_assistant.cli import session
from personal_assistant.cli.main import app as pa_app
from personal_assistant.database.engine import make_async_engine
from personal_assistant.errors import AuthenticationError, NotFoundError, ValidationError
from support.stack import Db, run, settings_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
REFUSED = "Authorization: invalid or revoked API key"
NO_BROKER = "redis://127.0.0.1:1/0"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Statements:
    """The SQL statements an engine ran, in order."""

    seen: list[str] = field(default_factory=list)

    def __call__(self, *args: Any) -> None:
        self.seen.append(args[2])  # (conn, cursor, statement, parameters, context, many)

    def updates(self) -> list[str]:
        return [s for s in self.seen if s.lstrip().upper().startswith("UPDATE")]


async def with_app(url: str, clock: Clock, work: Any, statements: Statements | None = None) -> Any:
    """``work(app)`` on a façade over ``url``; ``statements`` records the SQL it runs."""
    engine = make_async_engine(url, pooled=False)
    if statements is not None:
        event.listen(engine.sync_engine, "before_cursor_execute", statements)
    try:
        async with Assistant(
            settings_for({"DATABASE_URL": url}), engine=engine, clock=clock
        ) as app:
            return await work(app)
    finally:
        await engine.dispose()


def refused(url: str, token: object, statements: Statements | None = None) -> AuthenticationError:
    async def work(app: Assistant) -> None:
        await app.keys.authenticate(token)  # type: ignore[arg-type]  # what a caller may send

    with pytest.raises(AuthenticationError) as caught:
        run(with_app(url, Clock(), work, statements))
    return caught.value


def test_create_list_authenticate_revoke(url: str) -> None:
    clock = Clock()

    async def work(app: Assistant) -> None:
        ada = await app.tasks.create_user("Ada")
        bob = await app.tasks.create_user("Bob")
        made = await app.keys.create(ada.id, "  laptop ")
        assert (made.key.name, made.key.created_at) == ("laptop", T0)
        assert (made.key.last_used_at, made.key.revoked_at) == (None, None)
        assert tokens.parse(made.token) is not None
        assert made.token.startswith(made.key.prefix + "_")
        assert made.token not in repr(made) and made.token not in str(made)
        assert made.key.prefix in repr(made)
        other = await app.keys.create(bob.id, "phone")

        assert await app.keys.list_for(ada.id) == [made.key]
        assert await app.keys.list_for(bob.id) == [other.key]

        clock.now = T0 + timedelta(minutes=5)
        who = await app.keys.authenticate(made.token)
        assert (who.id, who.display_name) == (ada.id, "Ada")
        assert (await app.keys.authenticate(other.token)).id == bob.id
        [seen] = await app.keys.list_for(ada.id)
        assert seen.last_used_at == T0 + timedelta(minutes=5)

        # Another user's key, no key, an id beyond 64 bits: not found, naming key_id.
        for owner, key_id in (
            (bob.id, made.key.id),
            (ada.id, other.key.id + 1000),
            (ada.id, 2**70),
        ):
            with pytest.raises(NotFoundError) as missing:
                await app.keys.revoke(owner, key_id)
            assert missing.value.field == "key_id"
        assert (await app.keys.authenticate(made.token)).id == ada.id  # untouched

        clock.now = T0 + timedelta(minutes=10)
        gone = await app.keys.revoke(ada.id, made.key.id)
        assert (gone.id, gone.revoked_at) == (made.key.id, T0 + timedelta(minutes=10))
        clock.now = T0 + timedelta(minutes=20)
        assert await app.keys.revoke(ada.id, made.key.id) == gone  # again: no change
        assert await app.keys.list_for(ada.id) == [gone]  # a revoked key is still listed
        with pytest.raises(AuthenticationError) as caught:
            await app.keys.authenticate(made.token)
        assert str(caught.value) == REFUSED
        assert caught.value.field == "Authorization"
        assert (await app.keys.authenticate(other.token)).id == bob.id  # the others still work

    run(with_app(url, clock, work))


def test_every_refusal_is_the_same_and_never_shows_the_key(url: str) -> None:
    async def seed(app: Assistant) -> tuple[str, str]:
        ada = await app.tasks.create_user("Ada")
        kept = await app.keys.create(ada.id, "kept")
        revoked = await app.keys.create(ada.id, "revoked")
        await app.keys.revoke(ada.id, revoked.key.id)
        return kept.token, revoked.token

    kept, revoked = run(with_app(url, Clock(), seed))
    prefix, _secret = tokens.parse(kept) or ("", "")
    wrong_secret = f"{prefix}_{'A' * 43}"
    unknown = tokens.new_token().token
    for token in (revoked, wrong_secret, unknown, kept[:-1], kept + "A", f"Bearer {kept}", ""):
        error = refused(url, token)
        assert (str(error), error.message, error.field) == (
            REFUSED,
            "invalid or revoked API key",
            "Authorization",
        )
        if token:
            assert token not in repr(error)


def test_malformed_and_huge_keys_are_refused_without_a_statement(url: str) -> None:
    for token in ("pa_nope", "x" * 10_000, "pa_abcd1234_" + "A" * 10_000, None, 12):
        statements = Statements()
        refused(url, token, statements)
        assert statements.seen == []
    statements = Statements()
    refused(url, tokens.new_token().token, statements)  # well formed: looked up
    assert any("api_keys" in s for s in statements.seen)


def test_the_key_is_stored_nowhere(url: str) -> None:
    async def work(app: Assistant) -> tuple[int, str, str]:
        ada = await app.tasks.create_user("Ada")
        made = await app.keys.create(ada.id, "laptop")
        await app.keys.authenticate(made.token)
        return made.key.id, made.key.prefix, made.token

    key_id, prefix, token = run(with_app(url, Clock(), work))
    _prefix, secret = tokens.parse(token) or ("", "")
    db = Db(url)
    try:
        [row] = db.rows("SELECT * FROM api_keys")
    finally:
        db.close()
    stored = dict(row._mapping)
    for column, value in stored.items():
        assert token not in str(value) and secret not in str(value), column
    assert (stored["id"], stored["prefix"], stored["name"]) == (key_id, prefix, "laptop")
    assert stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert stored["last_used_at"] is not None


def test_last_used_at_is_written_at_most_once_a_minute(url: str) -> None:
    clock = Clock()

    async def seed(app: Assistant) -> tuple[int, str]:
        ada = await app.tasks.create_user("Ada")
        made = await app.keys.create(ada.id, "laptop")
        return ada.id, made.token

    ada, token = run(with_app(url, clock, seed))

    def use_at(moment: datetime) -> tuple[datetime | None, int]:
        """Authenticate at ``moment``: the key's last_used_at after, and the UPDATEs run."""
        clock.now = moment
        statements = Statements()

        async def work(app: Assistant) -> datetime | None:
            await app.keys.authenticate(token)
            return None

        run(with_app(url, clock, work, statements))

        async def read(app: Assistant) -> datetime | None:
            [key] = await app.keys.list_for(ada)
            return key.last_used_at

        return run(with_app(url, clock, read)), len(statements.updates())

    assert use_at(T0) == (T0, 1)  # first use: written
    assert use_at(T0 + timedelta(seconds=30)) == (T0, 0)
    assert use_at(T0 + timedelta(seconds=59)) == (T0, 0)
    assert use_at(T0 + timedelta(seconds=60)) == (T0 + timedelta(seconds=60), 1)
    assert use_at(T0 + timedelta(seconds=61)) == (T0 + timedelta(seconds=60), 0)
    assert use_at(T0 + timedelta(hours=3)) == (T0 + timedelta(hours=3), 1)


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 65, "two\nlines", "tab\there", "bell\x07", "rtl\u202eexe", "zw\u200bsp", 7],
)
def test_a_bad_name_is_refused_and_nothing_is_made(url: str, name: object) -> None:
    async def work(app: Assistant) -> list[Any]:
        ada = await app.tasks.create_user("Ada")
        with pytest.raises(ValidationError) as caught:
            await app.keys.create(ada.id, name)  # type: ignore[arg-type]  # what a caller may send
        assert caught.value.field == "name"
        return await app.keys.list_for(ada.id)

    assert run(with_app(url, Clock(), work)) == []


def test_names_up_to_64_printable_characters_and_unknown_users(url: str) -> None:
    async def work(app: Assistant) -> None:
        ada = await app.tasks.create_user("Ada")
        long = await app.keys.create(ada.id, "é" * 64)
        spaced = await app.keys.create(ada.id, "CI: nightly backup (prod)")
        assert [k.name for k in await app.keys.list_for(ada.id)] == [
            long.key.name,
            spaced.key.name,
        ]
        with pytest.raises(NotFoundError) as caught:
            await app.keys.create(ada.id + 1000, "laptop")
        assert caught.value.field == "user_id"

    run(with_app(url, Clock(), work))


def test_deleting_the_user_deletes_their_keys(url: str) -> None:
    async def seed(app: Assistant) -> tuple[int, str]:
        ada = await app.tasks.create_user("Ada")
        return ada.id, (await app.keys.create(ada.id, "laptop")).token

    ada, token = run(with_app(url, Clock(), seed))
    db = Db(url)
    try:
        db.execute("DELETE FROM users WHERE id = :id", id=ada)
        assert db.scalar("SELECT count(*) FROM api_keys") == 0
    finally:
        db.close()
    assert str(refused(url, token)) == REFUSED


# The CLI ---------------------------------------------------------------------------------------


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


def pa(cli: CliRunner, *args: str) -> Any:
    done = cli.invoke(pa_app, list(args))
    assert done.exit_code == 0, (done.output, done.exception)
    return done


def test_pa_user_key_create_list_revoke(cli: CliRunner, url: str) -> None:
    ada = json.loads(pa(cli, "user", "add", "Ada", "--json").stdout)["id"]

    made = pa(cli, "user", "key", "create", "laptop")  # the only user: no --user needed
    lines = made.stdout.splitlines()
    assert lines[0].startswith("created API key ") and lines[0].endswith(f"for user {ada}:")
    token = lines[1]
    assert tokens.parse(token) is not None
    assert lines[2] == "Store it now: it is shown this once and cannot be shown again."

    bob = json.loads(pa(cli, "user", "add", "Bob", "--json").stdout)["id"]
    as_json = pa(cli, "user", "key", "create", "script", "-u", str(bob), "--json")
    shown = json.loads(as_json.stdout)  # the line about showing it once is on stderr
    assert "shown this once" in as_json.stderr
    assert (shown["name"], shown["user_id"], shown["revoked_at"]) == ("script", bob, None)
    assert shown["token"].startswith(shown["prefix"] + "_")

    listed = pa(cli, "user", "key", "list", "-u", str(ada))
    prefix, _secret = tokens.parse(token) or ("", "")
    assert prefix in listed.stdout and token not in listed.stdout
    assert listed.stdout.splitlines()[0].split() == [
        "ID", "NAME", "PREFIX", "CREATED", "LAST", "USED", "REVOKED",
    ]  # fmt: skip
    [row] = json.loads(pa(cli, "user", "key", "list", "-u", str(ada), "--json").stdout)
    assert set(row) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at"}
    assert (row["name"], row["prefix"]) == ("laptop", prefix)
    carol = json.loads(pa(cli, "user", "add", "Carol", "--json").stdout)["id"]
    none = pa(cli, "user", "key", "list", "-u", str(carol)).stdout
    assert none == "no API keys: create one with `pa user key create NAME`\n"

    # Bob cannot revoke Ada's key: not found.
    theirs = cli.invoke(pa_app, ["user", "key", "revoke", str(row["id"]), "-u", str(bob)])
    assert isinstance(theirs.exception, NotFoundError)
    assert theirs.exception.field == "key_id"

    gone = pa(cli, "user", "key", "revoke", str(row["id"]), "-u", str(ada))
    assert gone.stdout.startswith(f"revoked API key {row['id']} (laptop, {prefix}) at ")
    again = pa(cli, "user", "key", "revoke", str(row["id"]), "-u", str(ada))
    assert again.stdout == gone.stdout
    assert str(refused(url, token)) == REFUSED

    async def whose(app: Assistant) -> int:
        return (await app.keys.authenticate(shown["token"])).id

    assert run(with_app(url, Clock(), whose)) == bob

    bad = cli.invoke(pa_app, ["user", "key", "create", "", "-u", str(ada)])
    assert isinstance(bad.exception, ValidationError)
    assert bad.exception.field == "name"
