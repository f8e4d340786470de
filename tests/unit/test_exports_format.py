"""The export format (pure): building, rendering, validating, file names and expiry."""

from __future__ import annotations

import copy
import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personal_assistant.errors import ScheduleError, ValidationError
from personal_assistant.exports import document as exports
from personal_assistant.exports import files as export_files

NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

USER = {
    "display_name": "Ada",
    "email": "ada@example.org",
    "phone": None,
    "timezone": "Europe/Paris",
    "created_at": T0,
}


def _task(task_id: int, title: str, schedule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": title,
        "description": "",
        "task_type": "reminder",
        "status": "active",
        "status_reason": None,
        "schedule": schedule,
        "next_run_at": NOW + timedelta(hours=1),
        "last_run_at": None,
        "ai_context": {"tone": "brief"},
        "notification_channels": ["in_app"],
        "catch_up": "once",
        "max_retries": 3,
        "consecutive_failures": 0,
        "created_at": T0,
        "updated_at": T0,
        **extra,
    }


def _run(run_id: int, task_id: int, hour: int, state: str = "succeeded") -> dict[str, Any]:
    at = T0 + timedelta(hours=hour)
    return {
        "id": run_id,
        "task_id": task_id,
        "scheduled_for": at,
        "state": state,
        "attempt": 1,
        "queued_at": at,
        "started_at": at,
        "finished_at": at + timedelta(seconds=3),
        "lease_expires_at": None,
        "worker_id": "host:1",
        "result": 'Answer, with a comma,\na newline and "quotes"',
        "error": None,
        "agent_name": "offline",
        "agent_model": "echo",
        "prompt_tokens": 12,
        "completion_tokens": 30,
    }


def _note(note_id: int, run_id: int, task_id: int, channel: str = "in_app") -> dict[str, Any]:
    return {
        "id": note_id,
        "run_id": run_id,
        "task_id": task_id,
        "channel": channel,
        "status": "delivered",
        "title": "Stand-up",
        "body": "Answer",
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": None,
        "created_at": T0,
        "delivered_at": T0,
        "read_at": None,
    }


DAILY = {"kind": "daily", "times": ["09:00"], "timezone": "Europe/Paris"}
CRON = {"kind": "cron", "expression": "0 7 * * 1-5", "timezone": "UTC"}


def document() -> dict[str, Any]:
    """A decoded JSON export: two tasks, three runs, two notifications."""
    built = exports.build_document(
        USER,
        [
            _task(10, "Stand-up", DAILY),
            _task(11, "Weekly report", CRON, status="paused", status_reason="away"),
        ],
        [_run(100, 10, 1), _run(101, 10, 25, "failed"), _run(102, 11, 1, "queued")],
        [_note(1000, 100, 10), _note(1001, 100, 10, "email")],
        now=NOW,
    )
    decoded = exports.load_json(exports.render_json(built))
    assert isinstance(decoded, dict)
    return decoded


def test_document_is_iso_utc_json_with_format_and_version() -> None:
    doc = document()
    assert (doc["format"], doc["version"]) == (exports.FORMAT, exports.VERSION)
    assert doc["exported_at"] == "2026-11-29T07:30:00+00:00"
    assert "id" not in doc["user"] and doc["user"]["created_at"] == "2026-11-01T08:00:00+00:00"
    assert doc["tasks"][0]["schedule"] == DAILY
    assert doc["runs"][0]["scheduled_for"] == "2026-11-01T09:00:00+00:00"


def test_a_valid_document_parses_into_rows_to_insert() -> None:
    parsed = exports.parse_document(document())
    assert parsed.user["timezone"] == "Europe/Paris"
    assert [task_id for task_id, _ in parsed.tasks] == [10, 11]
    first = parsed.tasks[0][1]
    assert (first["schedule_kind"], first["timezone"], first["schedule"]) == (
        "daily",
        "Europe/Paris",
        DAILY,
    )
    assert first["next_run_at"] == NOW + timedelta(hours=1)
    assert [(run_id, task_id) for run_id, task_id, _ in parsed.runs] == [
        (100, 10),
        (101, 10),
        (102, 11),
    ]
    assert parsed.runs[0][2]["result"] == 'Answer, with a comma,\na newline and "quotes"'
    assert [(run_id, row["channel"]) for run_id, row in parsed.notifications] == [
        (100, "in_app"),
        (100, "email"),
    ]


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("not an export", _set(("format",), "something-else"), "format"),
    ("a newer version", _set(("version",), 2), "version"),
    ("version true", _set(("version",), True), "version"),
    ("unknown top field", _set(("extra",), 1), "extra"),
    ("no tasks", _drop(("tasks",)), "tasks"),
    ("tasks not a list", _set(("tasks",), {}), "tasks"),
    ("user zone", _set(("user", "timezone"), "Mars/Base"), "user.timezone"),
    ("user email", _set(("user", "email"), "nope"), "user.email"),
    ("user name", _set(("user", "display_name"), " "), "user.display_name"),
    ("schedule zone", _set(("tasks", 1, "schedule", "timezone"), "Mars/Base"),
     "tasks[1].schedule.timezone"),
    ("schedule kind", _set(("tasks", 0, "schedule", "kind"), "hourly"), "tasks[0].schedule.kind"),
    ("cron", _set(("tasks", 1, "schedule", "expression"), "61 * * * *"),
     "tasks[1].schedule.expression"),
    ("schedule key", _set(("tasks", 0, "schedule", "every"), "1h"), "tasks[0].schedule.every"),
    ("title", _set(("tasks", 0, "title"), ""), "tasks[0].title"),
    ("title control", _set(("tasks", 0, "title"), "a\x00b"), "tasks[0].title"),
    ("task type", _set(("tasks", 0, "task_type"), "chore"), "tasks[0].task_type"),
    ("channels", _set(("tasks", 0, "notification_channels"), ["Not a name!"]),
     "tasks[0].notification_channels"),
    ("catch up", _set(("tasks", 0, "catch_up"), "never"), "tasks[0].catch_up"),
    ("retries", _set(("tasks", 0, "max_retries"), 99), "tasks[0].max_retries"),
    ("context", _set(("tasks", 0, "ai_context"), [1]), "tasks[0].ai_context"),
    ("status", _set(("tasks", 1, "status"), "sleeping"), "tasks[1].status"),
    ("naive time", _set(("tasks", 0, "next_run_at"), "2026-11-29T09:00:00"),
     "tasks[0].next_run_at"),
    ("not a time", _set(("tasks", 0, "updated_at"), "yesterday"), "tasks[0].updated_at"),
    ("no created_at", _drop(("tasks", 0, "created_at")), "tasks[0].created_at"),
    ("task field", _set(("tasks", 0, "owner"), 3), "tasks[0].owner"),
    ("task id twice", _set(("tasks", 1, "id"), 10), "tasks[1].id"),
    ("task not object", _set(("tasks", 1), "x"), "tasks[1]"),
    ("run task", _set(("runs", 2, "task_id"), 99), "runs[2].task_id"),
    ("run state", _set(("runs", 0, "state"), "done"), "runs[0].state"),
    ("run twice", _set(("runs", 1, "scheduled_for"), "2026-11-01T10:00:00+01:00"),
     "runs[1].scheduled_for"),
    ("run tokens", _set(("runs", 0, "prompt_tokens"), -1), "runs[0].prompt_tokens"),
    ("run attempt", _set(("runs", 0, "attempt"), 1.5), "runs[0].attempt"),
    ("run model", _set(("runs", 0, "agent_model"), "m" * 201), "runs[0].agent_model"),
    ("run id twice", _set(("runs", 1, "id"), 100), "runs[1].id"),
    ("run too many", _set(("runs", 0, "completion_tokens"), 2**31), "runs[0].completion_tokens"),
    ("run NUL", _set(("runs", 0, "result"), "a\x00b"), "runs[0].result"),
    ("run far future", _set(("runs", 0, "started_at"), "9999-12-31T23:00:00-05:00"),
     "runs[0].started_at"),
    ("note run", _set(("notifications", 0, "run_id"), 7), "notifications[0].run_id"),
    ("note task", _set(("notifications", 0, "task_id"), 11), "notifications[0].task_id"),
    ("note twice", _set(("notifications", 1, "channel"), "in_app"), "notifications[1].channel"),
    ("note status", _set(("notifications", 0, "status"), "sent"), "notifications[0].status"),
    ("note body", _set(("notifications", 0, "body"), None), "notifications[0].body"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), [(c, f) for _, c, f in BAD], ids=[n for n, *_ in BAD])
def test_an_invalid_document_names_the_bad_value(
    change: Callable[[dict[str, Any]], None], field: str
) -> None:
    doc = copy.deepcopy(document())
    change(doc)
    with pytest.raises(ValidationError) as caught:
        exports.parse_document(doc)
    assert caught.value.field == field, str(caught.value)


def test_schedule_errors_stay_schedule_errors() -> None:
    doc = document()
    doc["tasks"][1]["schedule"]["timezone"] = "Mars/Base"
    with pytest.raises(ScheduleError, match=r"tasks\[1\]\.schedule\.timezone: unknown time zone"):
        exports.parse_document(doc)


def test_optional_columns_may_be_absent_and_an_interval_is_anchored_at_creation() -> None:
    doc = document()
    del doc["runs"][0]["result"], doc["tasks"][0]["last_run_at"], doc["user"]["phone"]
    doc["tasks"][0]["schedule"] = {"kind": "interval", "every_seconds": 3600}
    parsed = exports.parse_document(doc)
    assert parsed.runs[0][2]["result"] is None
    assert parsed.tasks[0][1]["schedule"]["start"] == T0.isoformat()


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"PK\x03\x04"])
def test_a_file_that_is_not_json_names_the_file(raw: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        exports.load_json(raw)
    assert caught.value.field == "file"
    with pytest.raises(ValidationError) as not_object:
        exports.parse_document([1, 2])
    assert not_object.value.field == "file"


def test_csv_is_one_file_per_table_with_json_cells() -> None:
    doc = document()
    files = exports.render_csv(doc)
    assert list(files) == ["tasks.csv", "runs.csv", "notifications.csv"]
    tasks = list(csv.DictReader(io.StringIO(files["tasks.csv"])))
    assert tuple(tasks[0]) == exports.TASK_FIELDS
    assert json.loads(tasks[0]["schedule"]) == DAILY
    assert tasks[0]["status_reason"] == "" and tasks[1]["status_reason"] == "away"
    runs = list(csv.DictReader(io.StringIO(files["runs.csv"])))
    assert [r["state"] for r in runs] == ["succeeded", "failed", "queued"]
    assert runs[0]["result"] == doc["runs"][0]["result"]
    archive = zipfile.ZipFile(io.BytesIO(exports.render(doc, "csv", NOW)))
    assert archive.namelist() == list(files)
    assert archive.read("notifications.csv").decode() == files["notifications.csv"]
    assert json.loads(exports.render(doc, "json", NOW)) == doc


def test_format_names() -> None:
    assert exports.export_format("csv") == "csv"
    with pytest.raises(ValidationError) as caught:
        exports.export_format("xml")
    assert caught.value.field == "format"


def test_file_names_carry_the_user_and_the_utc_time() -> None:
    at = datetime(2026, 11, 29, 8, 30, 5, 123456, tzinfo=UTC)
    name = export_files.export_filename(7, "json", at)
    assert name == "pa-export-user-7-20261129T083005.123456Z.json"
    assert export_files.export_filename(7, "csv", at).endswith("Z.zip")
    assert export_files.exported_at(name) == at
    for other in ("notes.json", "pa-export-user-7-2026.json", name + ".bak", ".pa-export-x.tmp"):
        assert export_files.exported_at(other) is None


def test_expired_exports_selects_only_old_exports_and_stale_temporary_files() -> None:
    ttl = timedelta(hours=24)
    old = export_files.export_filename(1, "json", NOW - timedelta(hours=25))
    edge = export_files.export_filename(1, "csv", NOW - ttl)
    fresh = export_files.export_filename(2, "json", NOW - timedelta(hours=1))
    entries = [
        (old, NOW),  # the name, not the modification time, dates an export
        (edge, NOW - timedelta(days=9)),
        (fresh, NOW - timedelta(days=9)),
        (".pa-export-abc.tmp", NOW - timedelta(hours=30)),
        (".pa-export-new.tmp", NOW - timedelta(hours=1)),
        ("backup.json", NOW - timedelta(days=400)),
    ]
    assert export_files.expired_exports(entries, now=NOW, ttl=ttl) == [".pa-export-abc.tmp", old]
