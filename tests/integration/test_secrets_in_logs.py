"""No secret reaches a log file: a real worker and beat at ``-l info`` and ``pa -v`` commands.

The stack holds a secret in every place one can be: the database URL (password in the userinfo
and in ``?password=``), the Redis URL (a throw-away ``redis-server`` that requires a password),
a private calendar feed (a ``private-<hex>`` path token and a ``?token=``), Apprise ``mailto``
channels with an SMTP password (a local aiosmtpd server that checks it; one channel has a wrong
password, so Apprise's failure path logs too) and the channel encryption key. The worker syncs
the feed (httpx logs the URL it fetches at INFO), the reminder fires and is e-mailed; the CLI
does the same steps with ``-v``. Then every log file, and the CLI's output, is read: no secret
appears in any of them, while the masked forms do (the lines were written, only masked).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from support.cli import PA
from support.hook_server import SmtpServer, free_port
from support.ics_server import IcsServer, vcalendar, vevent
from support.processes import ProcessGroup, wait_until
from support.stack import Db, client_app, settings_for

pytestmark = pytest.mark.integration

PG_USERINFO_SECRET = "PgUserinfoS3cret71"
PG_QUERY_SECRET = "PgQueryS3cret72"
REDIS_SECRET = "RedisS3cretPass73"
FEED_QUERY_SECRET = "FeedQueryT0ken74"
FEED_PATH_SECRET = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SMTP_SECRET = "SmtpS3cretPass75"
WRONG_SECRET = "WrongSmtpPass76"
CHANNEL_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
SECRETS = (
    PG_USERINFO_SECRET,
    PG_QUERY_SECRET,
    REDIS_SECRET,
    FEED_QUERY_SECRET,
    FEED_PATH_SECRET,
    SMTP_SECRET,
    WRONG_SECRET,
    CHANNEL_KEY,
)
SYNC = "personal_assistant.workers.tasks.sync_tasks.sync_calendar"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[str]:
    """A throw-away Redis on loopback that requires ``REDIS_SECRET``; its URL."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed, and CI is set: the suite needs it")
        pytest.skip("redis-server is not installed")
    port = free_port()
    data = tmp_path / "redis-data"
    data.mkdir()
    proc = subprocess.Popen(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--requirepass",
            REDIS_SECRET,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{REDIS_SECRET}@127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _pings(url), timeout=20, message="the private Redis to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pings(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class Cli:
    """``pa -v`` with the stack's environment; its output is appended to ``logs/pa-cli.log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if k != "PA_USER"} | env
        self.log = log

    def __call__(self, *args: str, code: int | None = 0) -> str:
        """The command's output; ``code``: the exit code it must give (None: any)."""
        done = subprocess.run(
            [*PA, "-v", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        with self.log.open("a", encoding="utf-8") as out:
            shown = " ".join("URL" if "://" in arg else arg for arg in args)  # ours: not a leak
            out.write(f"$ pa -v {shown}\n{done.stdout}{done.stderr}")
        assert code is None or done.returncode == code, (args, done.stdout, done.stderr)
        return done.stdout + done.stderr


def _feed() -> bytes:
    """A call in 5 minutes (its reminder, 15 minutes before, is due at once) and a flight."""
    now = datetime.now(UTC)
    stamp = "%Y%m%dT%H%M%SZ"
    return vcalendar(
        vevent("soon@x", "Call Grace", f"DTSTART:{now + timedelta(minutes=5):{stamp}}"),
        vevent("later@x", "Flight", f"DTSTART:{now + timedelta(days=3):{stamp}}"),
    )


@pytest.mark.timeout(240)
def test_no_secret_reaches_a_log_file(
    database_url: str, private_redis: str, tmp_path: Path, processes: ProcessGroup
) -> None:
    assert database_url.startswith("postgresql://postgres@")  # trust: any password is accepted
    secret_db_url = (
        database_url.replace("postgres@", f"postgres:{PG_USERINFO_SECRET}@", 1)
        + f"?password={PG_QUERY_SECRET}"
    )
    env = {
        "DATABASE_URL": secret_db_url,
        "REDIS_URL": private_redis,
        "PA_HOME": str(tmp_path),
        "CHANNEL_KEYS": CHANNEL_KEY,
        "OUTBOUND_ALLOW": "127.0.0.0/8",
        "SCHEDULER_TICK_SECONDS": "0.2",
        "DISPATCH_LEASE": "3",
        "REAPER_INTERVAL": "1",
        "RETRY_BASE_SECONDS": "0.2",
        "RETRY_MAX_SECONDS": "0.5",
        "RUN_TIMEOUT": "10",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    pa = Cli(env, logs / "pa-cli.log")
    db = Db(database_url)
    try:
        with SmtpServer(login=("lou", SMTP_SECRET)) as smtp, IcsServer(_feed()) as ics:
            feed_url = ics.url(
                f"/calendar/ical/ada/private-{FEED_PATH_SECRET}/basic.ics?token={FEED_QUERY_SECRET}"
            )
            masked_feed = f"http://127.0.0.1:{ics.port}/calendar/ical/ada/****/basic.ics?token=****"
            pa("user", "add", "Ada", "--tz", "UTC")
            pa("channel", "add", "mail", smtp.url(login=("lou", SMTP_SECRET)))
            pa("channel", "add", "bad", smtp.url(login=("lou", WRONG_SECRET)))
            pa("calendar", "add", "work", feed_url, "--channel", "mail", "--channel", "bad")
            synced = pa("calendar", "sync", "work")
            assert f"HTTP Request: GET {masked_feed}" in synced  # httpx logged it, masked
            pa("channel", "test", "mail")
            pa("channel", "list")
            pa("calendar", "list")

            processes.worker(env)
            processes.beat(env)
            client = client_app(settings_for(env))
            feed_id = db.scalar("SELECT id FROM calendar_feeds")
            result = client.send_task(SYNC, args=[feed_id]).get(timeout=60)
            assert result["error"] is None

            def settled() -> dict[str, str]:
                rows = dict(db.rows("SELECT channel, status FROM notifications"))
                final = {c: s for c, s in rows.items() if s in ("delivered", "failed")}
                return final if {"mail", "bad"} <= set(final) else {}

            outcome = wait_until(settled, timeout=90, message="the reminder's two e-mails")
            assert (outcome["mail"], outcome["bad"]) == ("delivered", "failed")
            assert len(smtp.messages) == 2  # the test message and the reminder
            assert ("lou", False) in smtp.logins  # the wrong password was tried, and refused
            pa("channel", "test", "bad", code=6)
            pa("status", code=None)  # healthy or not: what it prints is what matters here
            pa("runs")
            pa("notifications")
            processes.stop_all()
        # An unreachable database: the error names its URL, masked (``?password=`` too).
        unreachable = secret_db_url.replace(":5432/", f":{free_port()}/", 1)
        refused = Cli({**env, "DATABASE_URL": unreachable}, logs / "pa-cli.log")
        assert "cannot read the database at postgresql://postgres:****@" in refused(
            "status", code=5
        )
    finally:
        db.close()

    written = {p.name: p.read_text(errors="replace") for p in logs.iterdir() if p.is_file()}
    assert {"worker.log", "beat.log", "core.log", "pa-cli.log"} <= set(written)
    for name, text in written.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} in {name}"
    assert f"HTTP Request: GET {masked_feed}" in written["worker.log"]
    assert "event=calendar_synced" in written["core.log"]
    assert "127.0.0.1" in written["pa-cli.log"] and "postgres:****@" in written["pa-cli.log"]
