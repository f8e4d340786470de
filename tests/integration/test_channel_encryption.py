"""Channel URLs (Apprise URLs: passwords, tokens) are encrypted at rest with CHANNEL_KEYS.

Each test is an attack or an operator's step, tried from outside: ``pa`` and Celery workers as
subprocesses on a PostgreSQL database of the test's own, a webhook receiver on loopback, and
the raw rows read with SQL. Keys are made here with ``Fernet.generate_key()``; a secret counts
as leaked if any 6 characters of it in a row appear in a stored row. The webhook receiver is on
loopback, which ``OUTBOUND_ALLOW`` lets channels reach.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from cryptography.fernet import Fernet, InvalidToken

from personal_assistant.database import migrate
from personal_assistant.errors import ConfigurationError
from personal_assistant.notifications.channels import mask_apprise_url
from support.cli import Pa
from support.hook_server import HookServer
from support.processes import ProcessGroup, wait_until
from support.services import PG_ADMIN_URL, drop_database
from support.services import database_url as pg_database_url
from support.stack import Db, client_app, settings_for

pytestmark = pytest.mark.integration

PASSWORD = "Hunter2PasswordValue"
TOKEN = "s3cretTokenValue42xyz"
DELIVER = "personal_assistant.workers.tasks.email_tasks.deliver_notifications"
UNREADABLE = "cannot decrypt: key not in CHANNEL_KEYS"
LOOPBACK = {"OUTBOUND_ALLOW": "127.0.0.0/8"}


def new_key() -> str:
    return Fernet.generate_key().decode()


def leaks(stored: str, *secrets: str) -> list[str]:
    """The 6-character pieces of ``secrets`` found in ``stored``."""
    return [
        secret[i : i + 6]
        for secret in secrets
        for i in range(len(secret) - 5)
        if secret[i : i + 6] in stored
    ]


class Cli:
    """``pa`` on the test's PostgreSQL database, with the CHANNEL_KEYS each call names."""

    def __init__(self, url: str, home: Path) -> None:
        self.base = Pa(home).env
        self.base.pop("CHANNEL_KEYS", None)
        self.base.pop("CHANNEL_KEYS_FILE", None)
        self.base |= {"DATABASE_URL": url, **LOOPBACK}
        self.pa = Pa(home)

    def __call__(self, *args: str, keys: str | None = None) -> Pa:
        self.pa.env = dict(self.base) | ({} if keys is None else {"CHANNEL_KEYS": keys})
        return self.pa

    def ok(self, *args: str, keys: str | None = None) -> str:
        return self(keys=keys).ok(*args)

    def json(self, *args: str, keys: str | None = None) -> object:
        return self(keys=keys).json(*args)


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    handle = Cli(database_url, tmp_path)
    handle.ok("user", "add", "Ada")
    return handle


def raw_rows(db: Db) -> str:
    """Every stored channel row, every column, as text."""
    return "\n".join(
        r[0] for r in db.rows("SELECT row_to_json(c)::text FROM notification_channels c")
    )


def test_the_stored_row_holds_no_part_of_the_secret_and_sending_still_works(
    cli: Cli, db: Db
) -> None:
    key = new_key()
    with HookServer() as hook:
        port = hook.port
        url = f"json://lou:{PASSWORD}@127.0.0.1:{port}/notify?-token={TOKEN}"
        added = cli.json("channel", "add", "hook", url, keys=key)
        assert isinstance(added, dict)
        assert added["url"] == f"json://lou:****@127.0.0.1:{port}/notify?-token=****"
        assert leaks(raw_rows(db), PASSWORD, TOKEN) == []
        assert cli.ok("channel", "test", "hook", keys=key) == "delivered to hook\n"
    assert hook.requests == [(f"/notify?token={TOKEN}", 200)]
    # Listing needs no key: the masked form is stored beside the ciphertext.
    listed = cli.json("channel", "list")
    assert isinstance(listed, list) and listed[0]["url"] == added["url"]


def test_a_url_no_key_decrypts_fails_permanently_and_the_worker_keeps_working(
    cli: Cli, db: Db, stack_env: dict[str, str], processes: ProcessGroup
) -> None:
    """A worker whose CHANNEL_KEYS lacks the key a URL was sealed with: that channel breaks
    with a clear reason, nothing is sent, and the worker goes on delivering the others."""
    old, current = new_key(), new_key()
    with HookServer() as hook:
        cli.ok("channel", "add", "lost", hook.url(f"/lost?-token={TOKEN}"), keys=old)
        cli.ok("channel", "add", "good", hook.url(f"/good?-token={TOKEN}"), keys=current)
        failed = cli(keys=current)("channel", "test", "lost", "--json")
        assert failed.returncode == 6, failed.stderr
        assert json.loads(failed.stdout) | {"channel": "lost"} == {
            "channel": "lost",
            "delivered": False,
            "reason": UNREADABLE,
            "permanent": True,
        }
        lost, good = (insert_pending(db, name) for name in ("lost", "good"))
        env = stack_env | LOOPBACK | {"CHANNEL_KEYS": current}
        worker = processes.worker(env)
        client = client_app(settings_for(env))
        client.send_task(DELIVER, args=[[lost]])
        status = wait_until(lambda: pending_status(db, lost), 60, message="the first delivery")
        client.send_task(DELIVER, args=[[good]])
        wait_until(lambda: pending_status(db, good), 60, message="the second delivery")
        assert worker.poll() is None
    assert status == "failed"
    assert db.rows("SELECT channel, status, last_error FROM notifications ORDER BY id") == [
        ("lost", "failed", UNREADABLE),
        ("good", "delivered", None),
        ("in_app:lost", "delivered", None),  # the owner is told that the channel broke
    ]
    assert db.rows("SELECT name, status, broken_reason FROM notification_channels ORDER BY id") == [
        ("lost", "broken", UNREADABLE),
        ("good", "active", None),
    ]
    assert hook.requests == [(f"/good?token={TOKEN}", 200)]
    assert TOKEN not in processes.log("worker")


def insert_pending(db: Db, channel: str) -> int:
    db.execute(
        "INSERT INTO notifications (user_id, channel, dedupe_key, status, title, body, attempts,"
        " created_at, next_attempt_at) VALUES ((SELECT max(id) FROM users), :c, :c, 'pending',"
        " 'Hello', 'Body', 0, now(), now())",
        c=channel,
    )
    return int(db.scalar("SELECT id FROM notifications WHERE channel = :c", c=channel))


def pending_status(db: Db, notification_id: int) -> str | None:
    """The row's status once it is no longer pending (None while it is)."""
    status = db.scalar("SELECT status FROM notifications WHERE id = :i", i=notification_id)
    return None if status == "pending" else str(status)


def test_rotation_re_encrypts_every_row_and_the_old_key_can_then_go(cli: Cli, db: Db) -> None:
    old, new, stray = new_key(), new_key(), new_key()
    with HookServer() as hook:
        for name in ("one", "two", "three"):
            cli.ok("channel", "add", name, hook.url(f"/{name}?-token={TOKEN}"), keys=old)
        cli.ok("channel", "add", "stray", hook.url(f"/stray?-token={TOKEN}"), keys=stray)
        before = dict(db.rows("SELECT name, url_sealed FROM notification_channels"))

        # The stray row is sealed with a key the rotation is not given: the command says so,
        # leaves that row as it is, and exits non-zero; every other row is rotated.
        rotating = cli(keys=f"{new},{old}")("channel", "rotate-key", "--json")
        assert rotating.returncode == 5, rotating.stderr
        report = json.loads(rotating.stdout)
        assert report["rotated"] == 3
        assert [(c["user_id"], c["name"]) for c in report["unreadable"]] == [(1, "stray")]
        cli.ok("channel", "remove", "stray", keys=new)

        after = dict(db.rows("SELECT name, url_sealed FROM notification_channels"))
        assert sorted(after) == ["one", "three", "two"]
        for name, sealed in after.items():
            assert sealed != before[name]
            opened = Fernet(new.encode()).decrypt(sealed.encode()).decode()
            assert opened == hook.url(f"/{name}?-token={TOKEN}")
            with pytest.raises(InvalidToken):
                Fernet(old.encode()).decrypt(sealed.encode())

        # The old key is dropped: every channel still sends, with the new key alone.
        for name in ("one", "two", "three"):
            assert cli.ok("channel", "test", name, keys=new) == f"delivered to {name}\n"
        again = cli.json("channel", "rotate-key", keys=new)
    assert again == {"rotated": 3, "unreadable": []}
    assert [path for path, _ in hook.requests] == [
        f"/{n}?token={TOKEN}" for n in ("one", "two", "three")
    ]


def test_the_real_stack_without_a_key_refuses_to_store_a_channel(
    cli: Cli, db: Db, tmp_path: Path
) -> None:
    """No per-machine key is made up when DATABASE_URL is set: each worker would have its own."""
    refused = cli()("channel", "add", "hook", f"json://127.0.0.1:9/x?-token={TOKEN}")
    assert refused.returncode == 5, (refused.stdout, refused.stderr)
    assert "CHANNEL_KEYS" in refused.stderr and TOKEN not in refused.stderr
    assert db.scalar("SELECT count(*) FROM notification_channels") == 0
    assert not (tmp_path / "var" / "channel.key").exists()


def test_the_embedded_default_needs_no_key(tmp_path: Path) -> None:
    """SQLite: a key is made once in var/channel.key (0600) and every later process uses it."""
    pa = Pa(tmp_path)
    pa.env.pop("CHANNEL_KEYS", None)
    pa.env.pop("CHANNEL_KEYS_FILE", None)
    pa.env |= LOOPBACK
    pa.ok("db", "upgrade")
    pa.ok("user", "add", "Ada")
    with HookServer() as hook:
        pa.ok("channel", "add", "hook", hook.url(f"/notify?-token={TOKEN}"))
        key_file = tmp_path / "var" / "channel.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_bytes()
        Fernet(key.strip())  # a valid key
        with sqlite3.connect(tmp_path / "pa.db") as conn:
            stored = "\n".join(
                repr(row) for row in conn.execute("SELECT * FROM notification_channels")
            )
        assert leaks(stored, TOKEN) == []
        assert pa.ok("channel", "test", "hook") == "delivered to hook\n"
    assert hook.requests == [(f"/notify?token={TOKEN}", 200)]
    assert key_file.read_bytes() == key


# The migration ------------------------------------------------------------------------------


@pytest.fixture
def at_0006(pg_template: str) -> Iterator[str]:
    """A PostgreSQL database migrated to 0006 only, with plaintext channel URLs in it."""
    name = f"pa_m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # a generated name
    url = pg_database_url(name)
    try:
        migrate.upgrade(url, "0006")
        db = Db(url)
        db.execute(
            "INSERT INTO users (display_name, timezone, created_at) VALUES ('Lou', 'UTC', now())"
        )
        for channel, plain in PLAINTEXT.items():
            db.execute(
                "INSERT INTO notification_channels (user_id, name, kind, url, status, created_at)"
                " VALUES ((SELECT max(id) FROM users), :n, 'webhook', :u, 'active', now())",
                n=channel,
                u=plain,
            )
        db.close()
        yield url
    finally:
        drop_database(name)


PLAINTEXT = {
    "hook": f"json://lou:{PASSWORD}@hooks.example.org/notify?token={TOKEN}",
    "form": f"form://hooks.example.org/in?key={TOKEN}",
}


def test_the_migration_encrypts_existing_plaintext_rows(
    at_0006: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    monkeypatch.setenv("PA_HOME", str(tmp_path))
    monkeypatch.delenv("CHANNEL_KEYS_FILE", raising=False)

    # Without a key the migration refuses, and leaves the database as it was.
    monkeypatch.delenv("CHANNEL_KEYS", raising=False)
    with pytest.raises(ConfigurationError, match="CHANNEL_KEYS"):
        migrate.upgrade(at_0006, "0007")
    assert migrate.current_revision(at_0006) == "0006"
    assert not (tmp_path / "var" / "channel.key").exists()

    monkeypatch.setenv("CHANNEL_KEYS", key)
    migrate.upgrade(at_0006, "0007")
    assert migrate.current_revision(at_0006) == "0007"
    db = Db(at_0006)
    try:
        assert leaks(raw_rows(db), PASSWORD, TOKEN) == []
        rows = db.rows("SELECT name, url_sealed, url_masked FROM notification_channels")
    finally:
        db.close()
    assert {name: masked for name, _, masked in rows} == {
        name: mask_apprise_url(plain) for name, plain in PLAINTEXT.items()
    }
    fernet = Fernet(key.encode())
    assert {name: fernet.decrypt(sealed.encode()).decode() for name, sealed, _ in rows} == (
        PLAINTEXT
    )

    # The downgrade opens them again, with the same key.
    command.downgrade(migrate.alembic_config(at_0006), "0006")
    db = Db(at_0006)
    try:
        assert dict(db.rows("SELECT name, url FROM notification_channels")) == PLAINTEXT
    finally:
        db.close()


def test_the_migration_seals_an_embedded_database_with_its_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedded installation upgraded with channels: var/channel.key is made and used."""
    for name in ("CHANNEL_KEYS", "CHANNEL_KEYS_FILE", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PA_HOME", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'pa.db'}"
    migrate.upgrade(url, "0006")
    db = Db(url)
    try:
        db.execute("INSERT INTO users (display_name, timezone) VALUES ('Lou', 'UTC')")
        for channel, plain in PLAINTEXT.items():
            db.execute(
                "INSERT INTO notification_channels (user_id, name, kind, url, status)"
                " VALUES (1, :n, 'webhook', :u, 'active')",
                n=channel,
                u=plain,
            )
        migrate.upgrade(url, "0007")
        rows = db.rows("SELECT name, url_sealed FROM notification_channels")
    finally:
        db.close()
    key_file = tmp_path / "var" / "channel.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    fernet = Fernet(key_file.read_bytes().strip())
    assert {name: fernet.decrypt(sealed.encode()).decode() for name, sealed in rows} == PLAINTEXT
