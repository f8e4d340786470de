"""The real ``pa`` command, run as a subprocess against a throw-away SQLite database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from personal_assistant.database.engine import make_sync_engine
from personal_assistant.database.models import Notification, TaskRun

pytestmark = pytest.mark.e2e

_SCRIPT = Path(sys.executable).with_name("pa")
PA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "personal_assistant.cli.main"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


@dataclass
class Cli:
    env: dict[str, str]
    database_url: str

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        done = subprocess.run(
            [*PA, *args],
            env={**self.env, **env},
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **env: str) -> Result:
        result = self(*args, **env)
        assert result.code == 0, f"pa {' '.join(args)} failed: {result.err}"
        return result


@pytest.fixture
def pa(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if k != "PA_USER" and not k.endswith("_URL")}
    url = f"sqlite:///{tmp_path}/pa.db"
    env.update(DATABASE_URL=url, PA_HOME=str(tmp_path), COLUMNS="200", NO_COLOR="1")
    return Cli(env, url)


@pytest.fixture
def ready(pa: Cli) -> Cli:
    """A migrated database with one user, Ada, in Europe/Paris."""
    pa.ok("db", "upgrade")
    pa.ok("user", "add", "Ada", "--tz", "Europe/Paris", "--email", "ada@example.org")
    return pa


def failed(result: Result, code: int, *words: str) -> None:
    """The command failed with ``code`` and one line on stderr containing ``words``."""
    assert result.code == code, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), result.err
    for word in words:
        assert word in lines[0], result.err
    assert "Traceback" not in result.err


def utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0), text
    return moment


# --- db and users -------------------------------------------------------------------------------


def test_commands_need_the_schema_and_db_upgrade_makes_it(pa: Cli) -> None:
    failed(pa("user", "list"), 5, "database", "pa db upgrade")
    failed(pa("task", "list"), 5, "pa db upgrade")
    first = pa("db", "upgrade", "--json").json()
    assert first["previous"] is None and first["revision"]
    again = pa.ok("db", "upgrade")
    assert f"revision: {first['revision']}" in again.out
    assert pa("user", "list", "--json").json() == []


def test_user_add_and_list(pa: Cli) -> None:
    pa.ok("db", "upgrade")
    assert "no users" in pa.ok("user", "list").out
    ada = pa("user", "add", "Ada", "--tz", "Europe/Paris", "--phone", "+33612345678", "--json")
    created = ada.json()
    assert created["display_name"] == "Ada" and created["timezone"] == "Europe/Paris"
    utc(created["created_at"])
    human = pa.ok("user", "add", "Bob", "--email", "bob@example.org", "--admin")
    assert "created user 2 (Bob, UTC, admin)" in human.out
    listed = pa.ok("user", "list").out.splitlines()
    assert listed[0].split() == ["ID", "NAME", "TIMEZONE", "EMAIL", "PHONE", "DIGEST", "ADMIN"]
    assert listed[1].split() == ["1", "Ada", "Europe/Paris", "-", "+33612345678", "-", "no"]
    assert listed[2].split() == ["2", "Bob", "UTC", "bob@example.org", "-", "-", "yes"]
    assert [u["id"] for u in pa("user", "list", "--json").json()] == [1, 2]


def test_bad_user_input_names_the_field_and_writes_nothing(pa: Cli) -> None:
    pa.ok("db", "upgrade")
    failed(pa("user", "add", "Ada", "--tz", "Mars/Olympus"), 2, "timezone", "Mars/Olympus")
    failed(pa("user", "add", "  "), 2, "display_name", "empty")
    failed(pa("user", "add", "Ada", "--email", "nope"), 2, "email")
    assert pa("user", "list", "--json").json() == []


def test_user_selection(pa: Cli) -> None:
    pa.ok("db", "upgrade")
    failed(pa("task", "list"), 2, "--user", "pa user add")
    pa.ok("user", "add", "Ada")
    pa.ok("task", "add", "Ada's", "--daily", "09:00")  # the only user
    pa.ok("user", "add", "Bob")
    failed(pa("task", "list"), 2, "--user", "PA_USER")
    failed(pa("task", "add", "x", "--daily", "09:00"), 2, "--user")
    pa.ok("task", "add", "Bob's", "--daily", "10:00", PA_USER="2")
    assert [t["title"] for t in pa("task", "list", "--json", "-u", "1").json()] == ["Ada's"]
    assert [t["title"] for t in pa("task", "list", "--json", PA_USER="2").json()] == ["Bob's"]
    assert pa("task", "list", "--json", "--user", "1", PA_USER="2").json()[0]["user_id"] == 1
    failed(pa("task", "list", "-u", "9"), 3, "user_id", "9")


# --- task add -----------------------------------------------------------------------------------


def test_task_add_every_schedule_option(ready: Cli) -> None:
    paris = ZoneInfo("Europe/Paris")
    cases: list[tuple[list[str], str, Callable[[datetime], bool]]] = [
        (
            ["--at", "2030-12-01 09:00"],
            "once",
            lambda d: d == datetime(2030, 12, 1, 8, 0, tzinfo=UTC),
        ),
        (
            ["--in", "10m"],
            "once",
            lambda d: timedelta(minutes=9) < d - datetime.now(UTC) <= timedelta(minutes=10),
        ),
        (
            ["--every", "30m"],
            "interval",
            lambda d: timedelta(minutes=29) < d - datetime.now(UTC) <= timedelta(minutes=30),
        ),
        (
            ["--daily", "09:00,18:00"],
            "daily",
            lambda d: d.astimezone(paris).strftime("%H:%M") in ("09:00", "18:00"),
        ),
        (
            ["--weekly", "mon,wed@09:00"],
            "weekly",
            lambda d: d.astimezone(paris).strftime("%a %H:%M") in ("Mon 09:00", "Wed 09:00"),
        ),
        (
            ["--monthly", "31@09:00", "--tz", "America/New_York"],
            "monthly",
            lambda d: d.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "09:00",
        ),
        (
            ["--cron", "0 9 * * 1-5"],
            "cron",
            lambda d: d.astimezone(paris).weekday() < 5 and d.astimezone(paris).hour == 9,
        ),
    ]
    for options, kind, check in cases:
        task = ready("task", "add", f"{kind} task", *options, "--json").json()
        assert task["schedule"]["kind"] == kind, options
        assert task["status"] == "active"
        assert check(utc(task["next_run_at"])), (options, task["next_run_at"])
    listed = ready("task", "list", "--json").json()
    assert [t["schedule"]["kind"] for t in listed] == [kind for _, kind, _ in cases]
    assert listed[0]["timezone"] == "Europe/Paris"  # the user's zone, with no --tz
    assert listed[5]["timezone"] == "America/New_York"


def test_task_add_prints_id_description_and_next_run(ready: Cli) -> None:
    out = ready.ok("task", "add", "Stand up", "--at", "2030-12-01 09:00").out
    assert "created task 1: Stand up" in out
    assert "schedule: once at 2030-12-01 09:00 (Europe/Paris)" in out
    assert "next run: 2030-12-01 08:00 UTC (09:00 Europe/Paris)" in out


def test_task_add_options(ready: Cli) -> None:
    task = ready(
        "task",
        "add",
        "Digest",
        "--instruction",
        "Summarise my inbox",
        "--type",
        "automated_task",
        "--channel",
        "in_app",
        "--channel",
        "email",
        "--catch-up",
        "skip",
        "--max-retries",
        "5",
        "--context",
        "folder=Inbox",
        "--context",
        "style=short=sweet",
        "--every",
        "1h",
        "--start",
        "2030-01-01 00:00",
        "--end",
        "2030-01-02 00:00",
        "--json",
    ).json()
    assert task["instruction"] == "Summarise my inbox"
    assert task["task_type"] == "automated_task"
    assert task["notification_channels"] == ["in_app", "email"]
    assert task["catch_up"] == "skip" and task["max_retries"] == 5
    assert task["ai_context"] == {"folder": "Inbox", "style": "short=sweet"}
    assert utc(task["next_run_at"]) == datetime(2029, 12, 31, 23, 0, tzinfo=UTC)
    assert utc(task["schedule"]["end"]) == datetime(2030, 1, 1, 23, 0, tzinfo=UTC)


BAD_TASKS: list[tuple[list[str], str, str]] = [
    (["x", "--daily", "09:00", "--tz", "Mars/Olympus"], "schedule.timezone", "Mars/Olympus"),
    (["x", "--cron", "61 * * * *"], "schedule.expression", "cron"),
    (["x", "--cron", "0 9 * *"], "schedule.expression", "5 fields"),
    (["x", "--at", "2020-01-01 09:00"], "schedule.at", "past"),
    (["x", "--at", "tomorrow"], "schedule.at", "ISO-8601"),
    (["  ", "--daily", "09:00"], "title", "empty"),
    (["x"], "schedule", "exactly one"),
    (["x", "--daily", "09:00", "--every", "1h"], "schedule", "exactly one"),
    (["x", "--daily", "25:00"], "schedule.times", "25:00"),
    (["x", "--weekly", "someday@09:00"], "schedule.weekdays", "someday"),
    (["x", "--weekly", "mon"], "--weekly", "mon,wed@09:00"),
    (["x", "--every", "10s"], "schedule.every", "60 s"),
    (["x", "--in", "soon"], "--in", "duration"),
    (["x", "--daily", "09:00", "--type", "chore"], "task_type", "reminder"),
    (["x", "--daily", "09:00", "--channel", "pigeon"], "notification_channels", "pigeon"),
    (["x", "--daily", "09:00", "--catch-up", "never"], "catch_up", "once"),
    (["x", "--daily", "09:00", "--max-retries", "99"], "max_retries", "20"),
    (["x", "--daily", "09:00", "--context", "novalue"], "--context", "KEY=VALUE"),
    (
        ["x", "--every", "1h", "--start", "2030-01-02", "--end", "2030-01-01"],
        "schedule.end",
        "after",
    ),
    (["x", "--at", "2030-01-01 09:00", "--end", "2029-01-01"], "schedule", "no firing"),
]


def test_task_add_bad_input_names_the_field_and_writes_nothing(ready: Cli) -> None:
    # One database for all cases: each subprocess costs a second or more of imports.
    for args, field, word in BAD_TASKS:
        failed(ready("task", "add", *args), 2, f"error: {field}: ", word)
    assert ready("task", "list", "--json").json() == []


# --- task list, show, preview -------------------------------------------------------------------


def test_task_list_filters_and_human_table(ready: Cli) -> None:
    ready.ok("task", "add", "A", "--daily", "09:00")
    ready.ok("task", "add", "B", "--daily", "10:00", "--type", "periodic_task")
    ready.ok("task", "pause", "1")
    assert [t["id"] for t in ready("task", "list", "--status", "paused", "--json").json()] == [1]
    assert [t["id"] for t in ready("task", "list", "--type", "periodic_task", "--json").json()] == [
        2
    ]
    lines = ready.ok("task", "list").out.splitlines()
    assert lines[0].split()[:4] == ["ID", "TITLE", "TYPE", "STATUS"]
    assert lines[1].split()[:4] == ["1", "A", "reminder", "paused"]
    assert "daily at 10:00 (Europe/Paris)" in lines[2]
    assert "no tasks" in ready.ok("task", "list", "--status", "failed").out
    failed(ready("task", "list", "--status", "sleepy"), 2, "status", "active")


def test_task_show(ready: Cli) -> None:
    ready.ok("task", "add", "Stand up", "--daily", "09:00", "--context", "team=core")
    run = ready("task", "run", "1", "--json").json()
    shown = ready("task", "show", "1", "--json").json()
    assert shown["task"]["title"] == "Stand up"
    firings = [utc(f) for f in shown["next_firings"]]
    assert len(firings) == 5 and firings == sorted(firings)
    paris = ZoneInfo("Europe/Paris")
    assert {f.astimezone(paris).strftime("%H:%M") for f in firings} == {"09:00"}
    assert [r["id"] for r in shown["recent_runs"]] == [run["id"]]
    human = ready.ok("task", "show", "1").out
    assert "title:       Stand up" in human
    assert "context:     team=core" in human
    assert "next firings:" in human and "LOCAL (Europe/Paris)" in human
    assert "last runs:" in human and "queued" in human


def test_task_preview_from_options_creates_nothing(ready: Cli) -> None:
    result = ready(
        "task", "preview", "--weekly", "sun@02:30", "--tz", "America/New_York", "-n", "3", "--json"
    ).json()
    firings = [utc(f) for f in result["firings"]]
    assert len(firings) == 3
    assert all(b - a >= timedelta(days=6) for a, b in pairwise(firings))
    assert result["timezone"] == "America/New_York"
    assert result["description"] == "weekly on sun at 02:30 (America/New_York)"
    default_tz = ready("task", "preview", "--daily", "09:00", "--json").json()
    assert default_tz["timezone"] == "Europe/Paris"  # the user's zone
    assert len(default_tz["firings"]) == 5
    human = ready.ok("task", "preview", "--cron", "0 9 * * 1-5", "-n", "2").out.splitlines()
    assert human[0] == "schedule: cron '0 9 * * 1-5' (Europe/Paris)"
    assert human[1].split() == ["#", "UTC", "LOCAL", "(Europe/Paris)"]
    assert len(human) == 4 and "09:00" in human[2]
    failed(ready("task", "preview", "--cron", "bad"), 2, "schedule.expression")
    failed(ready("task", "preview", "--at", "2020-01-01 00:00"), 2, "schedule.at", "past")
    assert ready("task", "list", "--json").json() == []


def test_task_preview_of_a_task(ready: Cli) -> None:
    ready.ok("task", "add", "Stand up", "--every", "2h")
    result = ready("task", "preview", "1", "-n", "4", "--json").json()
    firings = [utc(f) for f in result["firings"]]
    assert [b - a for a, b in pairwise(firings)] == [timedelta(hours=2)] * 3
    failed(ready("task", "preview", "1", "--daily", "09:00"), 2, "schedule", "not both")
    failed(ready("task", "preview", "7"), 3, "task_id", "7")


# --- pause, resume, run, delete -----------------------------------------------------------------


def test_pause_and_resume(ready: Cli) -> None:
    ready.ok("task", "add", "Stand up", "--daily", "09:00")
    paused = ready("task", "pause", "1", "--reason", "holiday", "--json").json()
    assert paused["status"] == "paused" and paused["status_reason"] == "holiday"
    failed(ready("task", "pause", "1"), 4, "status", "paused")
    assert "paused" in ready.ok("task", "show", "1").out
    out = ready.ok("task", "resume", "1").out
    assert "resumed task 1; next run:" in out and "UTC" in out
    assert ready("task", "show", "1", "--json").json()["task"]["status"] == "active"
    failed(ready("task", "resume", "1"), 4, "status", "already active")


def test_task_run_queues_a_run(ready: Cli) -> None:
    ready.ok("task", "add", "Stand up", "--daily", "09:00")
    out = ready.ok("task", "run", "1").out
    assert "queued run 1 of task 1" in out and "within a tick" in out
    queued = ready("task", "run", "1", "--json").json()
    assert queued["state"] == "queued" and queued["task_id"] == 1
    assert utc(queued["scheduled_for"]) <= datetime.now(UTC)
    runs = ready("runs", "--task", "1", "--json").json()
    assert [r["id"] for r in runs] == [2, 1]  # newest first
    assert len(ready("runs", "--limit", "1", "--json").json()) == 1
    assert ready("runs", "--state", "succeeded", "--json").json() == []
    assert "no runs" in ready.ok("runs", "--state", "failed").out
    table = ready.ok("runs").out.splitlines()
    assert table[0].split()[:4] == ["ID", "TASK", "STATE", "SCHEDULED"]
    failed(ready("runs", "--state", "sleepy"), 2, "state", "queued")
    failed(ready("runs", "--task", "9"), 3, "task_id")
    failed(ready("task", "run", "9"), 3, "task_id", "9")


def test_task_delete_asks_first(ready: Cli) -> None:
    ready.ok("task", "add", "A", "--daily", "09:00")
    ready.ok("task", "add", "B", "--daily", "09:00")
    ready.ok("task", "add", "C", "--daily", "09:00")
    refused = ready("task", "delete", "1")  # no stdin: assume no
    assert refused.code != 0 and "--yes" in refused.err
    assert "Traceback" not in refused.err
    said_no = ready("task", "delete", "1", stdin="n\n")
    assert said_no.code != 0
    assert [t["id"] for t in ready("task", "list", "--json").json()] == [1, 2, 3]
    assert "deleted task 1" in ready("task", "delete", "1", stdin="y\n").out
    assert ready("task", "delete", "2", "--yes", "--json").json() == {"deleted": True, "task_id": 2}
    assert [t["id"] for t in ready("task", "list", "--json").json()] == [3]
    failed(ready("task", "delete", "2", "--yes"), 3, "task_id", "2")


def test_someone_elses_task_is_not_found(ready: Cli) -> None:
    ready.ok("task", "add", "Ada's", "--daily", "09:00")
    ready.ok("user", "add", "Bob")
    as_bob = {"PA_USER": "2"}
    for args in (
        ["task", "show", "1"],
        ["task", "preview", "1"],
        ["task", "pause", "1"],
        ["task", "resume", "1"],
        ["task", "run", "1"],
        ["task", "delete", "1", "--yes"],
        ["runs", "--task", "1"],
    ):
        failed(ready(*args, **as_bob), 3, "task_id", "not found")
    assert ready("task", "list", "--json", **as_bob).json() == []
    ada = ready("task", "list", "--json", "-u", "1").json()
    assert [(t["id"], t["status"]) for t in ada] == [(1, "active")]
    assert ready("runs", "--json", "-u", "1").json() == []


# --- notifications ------------------------------------------------------------------------------


def _deliver(database_url: str, task_id: int, user_id: int, titles: list[str]) -> None:
    """Write runs and in-app notifications as a worker would (the test's stand-in)."""
    engine = make_sync_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            base = datetime(2030, 1, 1, tzinfo=UTC)
            for n, title in enumerate(titles):
                at = base + timedelta(hours=n)
                run = TaskRun(
                    task_id=task_id,
                    scheduled_for=at,
                    state="succeeded",
                    attempt=1,
                    queued_at=at,
                    finished_at=at,
                    result=f"answer {n}",
                )
                session.add(run)
                session.flush()
                session.add(
                    Notification(
                        run_id=run.id,
                        task_id=task_id,
                        user_id=user_id,
                        channel="in_app",
                        status="delivered",
                        title=title,
                        body=f"body {n}",
                        created_at=at,
                        delivered_at=at,
                    )
                )
    finally:
        engine.dispose()


def test_notifications_list_and_mark_read(ready: Cli) -> None:
    ready.ok("task", "add", "Stand up", "--daily", "09:00")
    assert "no notifications" in ready.ok("notifications").out
    _deliver(ready.database_url, 1, 1, ["first", "second", "third"])
    listed = ready("notifications", "--json").json()
    assert [n["title"] for n in listed["notifications"]] == ["third", "second", "first"]
    assert listed["marked_read"] == 0
    assert all(n["read_at"] is None for n in listed["notifications"])
    marked = ready("notifications", "--mark-read", "--limit", "2", "--json").json()
    assert [n["title"] for n in marked["notifications"]] == ["third", "second"]
    assert marked["marked_read"] == 2
    unread = ready("notifications", "--unread", "--json").json()["notifications"]
    assert [n["title"] for n in unread] == ["first"]
    out = ready.ok("notifications", "--unread", "--mark-read").out
    assert "first" in out and "marked 1 read" in out
    assert ready("notifications", "--unread", "--json").json()["notifications"] == []
    table = ready.ok("notifications").out.splitlines()
    assert table[0].split()[:4] == ["ID", "TASK", "CHANNEL", "STATUS"]
    assert len(table) == 4
    succeeded = ready("runs", "--state", "succeeded", "--json").json()
    assert [r["result"] for r in succeeded] == ["answer 2", "answer 1", "answer 0"]
    ready.ok("user", "add", "Bob")
    assert ready("notifications", "--json", "-u", "2").json()["notifications"] == []


# --- the program itself -------------------------------------------------------------------------


def test_python_m_and_help_need_no_database(pa: Cli, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "personal_assistant.cli.main", "--help"],
        env=pa.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for command in ("db", "user", "task", "runs", "notifications", "run", "worker", "beat"):
        assert command in done.stdout
    assert "preview" in pa.ok("task", "--help").out
    assert not (tmp_path / "pa.db").exists()


def test_a_bad_setting_is_one_line(pa: Cli) -> None:
    failed(pa("user", "list", AGENT="openai"), 5, "AGENT_BASE_URL")
    failed(pa("user", "list", DATABASE_URL="mysql://u:secret@db/x"), 5, "DATABASE_URL")
    assert "secret" not in pa("user", "list", DATABASE_URL="mysql://u:secret@db/x").err
