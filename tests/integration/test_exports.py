"""Export and import on real databases: the round trip, refusals that write nothing, cleanup,
and the ``file_tasks`` shells run by a real worker."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from personal_assistant.cli import session
from personal_assistant.cli.main import app as pa_app
from personal_assistant.config import Settings
from personal_assistant.database import migrate
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import Notification, TaskRun
from personal_assistant.errors import ConflictError, NotFoundError, ValidationError
from personal_assistant.exports import document, files, store
from personal_assistant.tasks.manager import AITaskManager
from support.processes import ProcessGroup, wait_until
from support.services import create_database_from_template, drop_database
from support.stack import Db, client_app, run, settings_for

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
LATER = NOW + timedelta(days=3)


@pytest.fixture
def other_database_url(pg_template: str) -> Iterator[str]:
    """A second fresh PostgreSQL database, cloned from the template as conftest does."""
    name = f"pa_t_{uuid.uuid4().hex[:12]}"
    yield create_database_from_template(name, pg_template)
    drop_database(name)


def _url(request: pytest.FixtureRequest, backend: str, second: bool = False) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("other_database_url" if second else "database_url"))
    if not second:
        return str(request.getfixturevalue("sqlite_url"))
    path: Path = request.getfixturevalue("tmp_path")
    url = f"sqlite:///{path / 'other.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest) -> str:
    return _url(request, request.param)


def _settings(url: str) -> Settings:
    return Settings(DATABASE_URL=url)  # type: ignore[call-arg]


async def _seed(url: str) -> int:
    """Ada with three tasks, their runs in every state, and notifications; returns her id."""
    async with AITaskManager(_settings(url), clock=lambda: NOW) as manager:
        await manager.create_user("Someone else")
        ada = await manager.create_user("Ada", email="ada@example.org", timezone="Europe/Paris")
        daily = await manager.create_task(
            ada.id,
            "Stand-up",
            schedule={"kind": "daily", "times": ["09:00", "18:30"]},
            description="Summarise\nmy day",
            ai_context={"tone": "brief", "items": [1, 2]},
            notification_channels=["in_app", "email"],
        )
        weekly = await manager.create_task(
            ada.id,
            "Report",
            task_type="periodic_task",
            schedule={"kind": "cron", "expression": "0 7 * * 1-5", "timezone": "UTC"},
            catch_up="all",
        )
        await manager.pause_task(weekly.id, ada.id, reason="on holiday")
        await manager.create_task(
            ada.id, "Water plants", schedule={"kind": "interval", "every": "2h"}
        )
    db = Db(url)
    try:
        with Session(db.engine) as session, session.begin():
            for day, state in enumerate(["succeeded", "failed", "skipped", "cancelled", "queued"]):
                at = NOW - timedelta(days=5 - day)
                done = state not in ("queued",)
                run = TaskRun(
                    task_id=daily.id,
                    scheduled_for=at,
                    state=state,
                    attempt=1 if done else 0,
                    queued_at=at,
                    started_at=at + timedelta(seconds=1) if done else None,
                    finished_at=at + timedelta(seconds=4) if done else None,
                    lease_expires_at=None if done else at + timedelta(minutes=1),
                    worker_id="host:42" if done else None,
                    result='Done, "quoted",\nwith ünïcode' if state == "succeeded" else None,
                    error="agent said no" if state == "failed" else None,
                    agent_name="offline" if done else None,
                    agent_model="echo-1" if done else None,
                    prompt_tokens=11 if state == "succeeded" else None,
                    completion_tokens=22 if state == "succeeded" else None,
                )
                session.add(run)
                session.flush()
                if state in ("succeeded", "failed"):
                    for channel, status in (("in_app", "delivered"), ("email", "failed")):
                        session.add(
                            Notification(
                                run_id=run.id,
                                task_id=daily.id,
                                user_id=ada.id,
                                channel=channel,
                                status=status,
                                title=f"{state}: Stand-up",
                                body=run.result or run.error or "",
                                attempts=0 if channel == "in_app" else 5,
                                last_error=None if channel == "in_app" else "550 no such user",
                                created_at=at + timedelta(seconds=5),
                                delivered_at=at + timedelta(seconds=5)
                                if status == "delivered"
                                else None,
                                read_at=NOW
                                if state == "succeeded" and channel == "in_app"
                                else None,
                            )
                        )
            session.add(
                TaskRun(
                    task_id=weekly.id,
                    scheduled_for=NOW - timedelta(days=1),
                    state="running",
                    attempt=2,
                    queued_at=NOW - timedelta(days=1),
                    started_at=NOW - timedelta(hours=23),
                    lease_expires_at=NOW - timedelta(hours=22),
                    worker_id="host:7",
                )
            )
    finally:
        db.close()
    return ada.id


async def _export(url: str, user_id: int, export_dir: Path, fmt: str = "json") -> store.Exported:
    engine = make_async_engine(url, pooled=False)
    try:
        kind = document.export_format(fmt)
        return await store.export_user(engine, user_id, export_dir, fmt=kind, now=LATER)
    finally:
        await engine.dispose()


async def _import(url: str, data: object, user_id: int | None = None) -> store.ImportReport:
    engine = make_async_engine(url, pooled=False)
    try:
        # At NOW, before every exported next_run_at: an import keeps a next run still to come
        # (a past one is moved to the latest firing, tests/integration/test_quotas.py).
        return await store.import_export(engine, data, user_id=user_id, now=NOW)
    finally:
        await engine.dispose()


def _load(path: Path) -> dict[str, Any]:
    data = document.load_json(path.read_bytes())
    assert isinstance(data, dict)
    return data


def _without_ids(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with ids replaced by positions and the export time left out."""
    tasks = {t["id"]: i for i, t in enumerate(doc["tasks"])}
    runs = {r["id"]: i for i, r in enumerate(doc["runs"])}
    return {
        "format": doc["format"],
        "version": doc["version"],
        "user": doc["user"],
        "tasks": [{**t, "id": tasks[t["id"]]} for t in doc["tasks"]],
        "runs": [{**r, "id": None, "task_id": tasks[r["task_id"]]} for r in doc["runs"]],
        "notifications": [
            {**n, "id": None, "run_id": runs[n["run_id"]], "task_id": tasks[n["task_id"]]}
            for n in doc["notifications"]
        ],
    }


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("postgresql", "postgresql"),
        ("sqlite", "sqlite"),
        ("sqlite", "postgresql"),
        ("postgresql", "sqlite"),
    ],
)
def test_export_import_export_gives_the_same_document(
    request: pytest.FixtureRequest, source: str, target: str, tmp_path: Path
) -> None:
    source_url = _url(request, source)
    target_url = _url(request, target, second=True)
    ada = run(_seed(source_url))
    first = run(_export(source_url, ada, tmp_path / "exports"))
    assert (first.tasks, first.runs, first.notifications) == (3, 6, 4)
    assert first.path.parent == tmp_path / "exports"
    assert first.path.name == files.export_filename(ada, "json", LATER)
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert os.listdir(first.path.parent) == [first.path.name]  # no temporary file left
    exported = _load(first.path)

    report = run(_import(target_url, exported))
    assert (report.created_user, report.tasks, report.runs, report.notifications) == (
        True,
        3,
        6,
        4,
    )
    second = run(_export(target_url, report.user_id, tmp_path / "again"))
    again = _load(second.path)
    assert _without_ids(again) == _without_ids(exported)
    assert again["runs"][0]["result"] == 'Done, "quoted",\nwith ünïcode'
    assert {r["state"] for r in again["runs"]} == {
        "succeeded",
        "failed",
        "skipped",
        "cancelled",
        "queued",
        "running",
    }

    db = Db(target_url)
    try:
        assert db.scalar("SELECT count(*) FROM users") == 1
        owners = db.rows("SELECT DISTINCT user_id FROM notifications")
        assert owners == [(report.user_id,)]
    finally:
        db.close()


def test_importing_the_same_export_twice_is_refused_and_writes_nothing(
    url: str, tmp_path: Path
) -> None:
    ada = run(_seed(url))
    data = _load(run(_export(url, ada, tmp_path)).path)
    counts = "SELECT (SELECT count(*) FROM ai_tasks), (SELECT count(*) FROM task_runs)"
    db = Db(url)
    try:
        before = db.rows(counts)
        with pytest.raises(ConflictError) as caught:
            run(_import(url, data, user_id=ada))
        assert caught.value.field == "tasks[0]"
        assert db.rows(counts) == before

        bob = db.scalar("SELECT id FROM users WHERE display_name = 'Someone else'")
        report = run(_import(url, data, user_id=bob))  # another user may have a copy
        assert (report.user_id, report.created_user, report.runs) == (bob, False, 6)
        with pytest.raises(ConflictError):
            run(_import(url, data, user_id=bob))
        assert db.scalar("SELECT count(*) FROM task_runs") == 12
        assert db.scalar("SELECT display_name FROM users WHERE id = :u", u=bob) == "Someone else"
    finally:
        db.close()


def test_an_invalid_or_misdirected_import_writes_nothing(url: str, tmp_path: Path) -> None:
    ada = run(_seed(url))
    data = _load(run(_export(url, ada, tmp_path)).path)
    db = Db(url)
    tables = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM ai_tasks), " + (
        "(SELECT count(*) FROM task_runs), (SELECT count(*) FROM notifications)"
    )
    try:
        before = db.rows(tables)
        bad = json.loads(json.dumps(data))
        bad["tasks"][2]["schedule"]["timezone"] = "Mars/Olympus_Mons"
        with pytest.raises(ValidationError) as caught:
            run(_import(url, bad))
        assert caught.value.field == "tasks[2].schedule.timezone"

        bad = json.loads(json.dumps(data))
        bad["notifications"][-1]["channel"] = bad["notifications"][-2]["channel"]
        with pytest.raises(ValidationError) as caught:
            run(_import(url, bad))
        assert caught.value.field == "notifications[3].channel"

        with pytest.raises(NotFoundError):
            run(_import(url, data, user_id=999_999))
        assert db.rows(tables) == before
    finally:
        db.close()


def test_csv_export_is_a_zip_of_one_file_per_table(url: str, tmp_path: Path) -> None:
    ada = run(_seed(url))
    done = run(_export(url, ada, tmp_path, fmt="csv"))
    assert done.path.suffix == ".zip"
    archive = zipfile.ZipFile(done.path)
    assert archive.namelist() == ["tasks.csv", "runs.csv", "notifications.csv"]
    tasks = list(csv.DictReader(io.StringIO(archive.read("tasks.csv").decode())))
    assert [t["title"] for t in tasks] == ["Stand-up", "Report", "Water plants"]
    assert json.loads(tasks[0]["ai_context"]) == {"items": [1, 2], "tone": "brief"}
    assert tasks[1]["status"] == "paused" and tasks[1]["status_reason"] == "on holiday"
    runs = list(csv.DictReader(io.StringIO(archive.read("runs.csv").decode())))
    assert len(runs) == 6 and runs[0]["result"] == 'Done, "quoted",\nwith ünïcode'
    assert runs[0]["finished_at"].endswith("+00:00")
    notes = list(csv.DictReader(io.StringIO(archive.read("notifications.csv").decode())))
    assert [n["channel"] for n in notes] == ["email", "in_app", "email", "in_app"]


def test_exporting_an_unknown_user_writes_no_file(url: str, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        run(_export(url, 424242, tmp_path / "exports"))
    assert not (tmp_path / "exports").exists()


def test_cleanup_deletes_expired_exports_only(tmp_path: Path) -> None:
    export_dir = tmp_path / "exports"
    now = datetime.now(UTC)
    ttl = timedelta(hours=24)
    old = export_dir / files.export_filename(1, "json", now - timedelta(hours=30))
    fresh = export_dir / files.export_filename(1, "csv", now - timedelta(hours=1))
    stale_temp = export_dir / ".pa-export-crashed.tmp"
    mine = export_dir / "keep-me.json"
    for path in (old, fresh, stale_temp, mine):
        files.write_atomic(path, b"{}")
    day_ago = (now - timedelta(hours=25)).timestamp()
    os.utime(stale_temp, (day_ago, day_ago))
    os.utime(mine, (day_ago, day_ago))
    assert files.cleanup_exports(export_dir, now=now, ttl=ttl) == 2
    assert sorted(p.name for p in export_dir.iterdir()) == sorted([fresh.name, mine.name])
    assert files.cleanup_exports(export_dir, now=now, ttl=ttl) == 0
    assert files.cleanup_exports(tmp_path / "missing", now=now, ttl=ttl) == 0


def test_the_file_tasks_run_in_a_real_worker(
    stack_env: dict[str, str], processes: ProcessGroup, tmp_path: Path
) -> None:
    ada = run(_seed(stack_env["DATABASE_URL"]))
    export_dir = tmp_path / "var" / "exports"  # the default under PA_HOME
    stale = export_dir / files.export_filename(ada, "json", datetime.now(UTC) - timedelta(days=2))
    files.write_atomic(stale, b"{}")
    processes.worker(stack_env)
    client = client_app(settings_for(stack_env))
    task = "personal_assistant.workers.tasks.file_tasks."
    result = client.send_task(task + "export_user_data", args=[ada, "csv"]).get(timeout=60)
    path = Path(result["path"])
    assert (path.parent, path.suffix, result["runs"]) == (export_dir, ".zip", 6)
    assert zipfile.ZipFile(path).namelist()[0] == "tasks.csv"
    client.send_task(task + "cleanup_exports")
    wait_until(lambda: not stale.exists(), timeout=60, message="the expired export to go")
    assert path.exists()


@pytest.fixture
def cli(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """``pa`` (for its ``export`` and ``import``) on a SQLite database."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PA_HOME", str(tmp_path))
    monkeypatch.delenv("PA_USER", raising=False)
    session.settings.cache_clear()
    yield pa_app
    session.settings.cache_clear()


def test_pa_export_and_pa_import(cli: typer.Typer, sqlite_url: str, tmp_path: Path) -> None:
    ada = run(_seed(sqlite_url))
    runner = CliRunner()
    ambiguous = runner.invoke(cli, ["export"])
    assert isinstance(ambiguous.exception, ValidationError)
    assert ambiguous.exception.field == "--user"  # two users: the command does not guess

    done = runner.invoke(cli, ["export", "--user", str(ada), "--json"])
    assert done.exit_code == 0, done.output
    written = json.loads(done.output)
    path = Path(written["path"])
    assert path.parent == tmp_path / "var" / "exports"
    assert (written["tasks"], written["runs"], written["notifications"]) == (3, 6, 4)

    out = tmp_path / "mine.zip"
    csv_done = runner.invoke(cli, ["export", "-u", str(ada), "-f", "csv", "-o", str(out)])
    assert csv_done.exit_code == 0 and str(out) in csv_done.output
    assert zipfile.ZipFile(out).namelist()[0] == "tasks.csv"
    assert runner.invoke(cli, ["export", "-u", str(ada), "-f", "xml"]).exit_code == 2

    imported = runner.invoke(cli, ["import", str(path), "--json"])
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.output)
    assert (report["created_user"], report["tasks"], report["runs"]) == (True, 3, 6)
    twice = runner.invoke(cli, ["import", str(path), "--user", str(report["user_id"])])
    assert isinstance(twice.exception, ConflictError)
    for bad in (out, tmp_path / "missing.json"):
        refused = runner.invoke(cli, ["import", str(bad)])
        assert isinstance(refused.exception, ValidationError)
        assert refused.exception.field == "file"
