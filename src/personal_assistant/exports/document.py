"""The export document: its fields, rendered as JSON or a CSV zip, and read back for an import.

The JSON export (``format`` = :data:`FORMAT`, ``version`` = :data:`VERSION`) is one document:
``user`` (without its id), ``tasks``, ``runs`` and ``notifications``, each row with the columns
of its table. Datetimes are ISO-8601 in UTC; ``schedule`` is the task's schedule as stored. Ids
are kept only as references inside the document (a run's ``task_id``, a notification's
``run_id``): an import gives every row a new id. The CSV export is a zip of ``tasks.csv``,
``runs.csv`` and ``notifications.csv`` with the same columns (JSON values as JSON text), for
spreadsheets: a text cell that starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage
return) is prefixed with ``'`` so that opening the file never evaluates what a task, an agent or
a calendar event wrote. CSV exports are not imported.

:func:`parse_document` validates a whole import (at most :data:`MAX_NESTING` levels deep, the
format and version, every task through the manager's checks in ``tasks.inputs`` and
:func:`parse_schedule`, every run and notification) and raises :class:`ValidationError` naming
the path of the first bad value (``tasks[3].schedule.timezone``). An imported task is due from
the time of the import, not from the file (:func:`imported_next_run`, :func:`rebase`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from personal_assistant.core.catchup import plan_due
from personal_assistant.core.next_run import with_interval_anchor
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_kinds import Schedule
from personal_assistant.core.states import NotificationStatus, RunState, TaskStatus
from personal_assistant.errors import ValidationError
from personal_assistant.tasks import inputs as check
from personal_assistant.tasks import rows

FORMAT = "personal-assistant-export"
VERSION = 1
ExportFormat = Literal["json", "csv"]

USER_FIELDS = ("display_name", "email", "phone", "timezone", "created_at")
TASK_FIELDS = (
    "id", "title", "description", "task_type", "status", "status_reason", "schedule",
    "next_run_at", "last_run_at", "ai_context", "notification_channels", "catch_up",
    "max_retries", "consecutive_failures", "created_at", "updated_at",
)  # fmt: skip
RUN_FIELDS = (
    "id", "task_id", "scheduled_for", "state", "attempt", "queued_at", "started_at",
    "finished_at", "lease_expires_at", "worker_id", "result", "error", "agent_name",
    "agent_model", "prompt_tokens", "completion_tokens",
)  # fmt: skip
NOTIFICATION_FIELDS = (
    "id", "run_id", "task_id", "channel", "status", "title", "body", "attempts", "last_error",
    "next_attempt_at", "created_at", "delivered_at", "read_at",
)  # fmt: skip
_TOP_FIELDS = ("format", "version", "exported_at", "user", "tasks", "runs", "notifications")
_INT_MAX = 2**31 - 1  # the counters are 32-bit integer columns


# --- the document ----------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _plain(row: Mapping[Any, Any], fields: Sequence[str]) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = row[name]
        out[name] = iso(value) if isinstance(value, datetime) else value
    return out


def build_document(
    user: Mapping[Any, Any],
    tasks: Iterable[Mapping[Any, Any]],
    runs: Iterable[Mapping[Any, Any]],
    notifications: Iterable[Mapping[Any, Any]],
    *,
    now: datetime,
) -> dict[str, Any]:
    """The export document from rows (mappings with at least the exported columns)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": iso(now),
        "user": _plain(user, USER_FIELDS),
        "tasks": [_plain(r, TASK_FIELDS) for r in tasks],
        "runs": [_plain(r, RUN_FIELDS) for r in runs],
        "notifications": [_plain(r, NOTIFICATION_FIELDS) for r in notifications],
    }


def render_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode()


def render_csv(document: Mapping[str, Any]) -> dict[str, str]:
    """``{"tasks.csv": text, ...}``: one file per table, JSON values as JSON text."""
    files: dict[str, str] = {}
    for table, fields in (
        ("tasks", TASK_FIELDS),
        ("runs", RUN_FIELDS),
        ("notifications", NOTIFICATION_FIELDS),
    ):
        out = io.StringIO()
        # RFC 4180 line ends: a cell holding a lone CR is quoted too (with "\n" it was not,
        # and a spreadsheet started a new row there).
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(fields)
        for row in document[table]:
            writer.writerow(_csv_cell(row[f]) for f in fields)
        files[f"{table}.csv"] = out.getvalue()
    return files


#: A text cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: object) -> object:
    """One CSV cell; a text that a spreadsheet would evaluate (``=HYPERLINK(...)``) is
    prefixed with ``'``, which makes it text there. Numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render_zip(files: Mapping[str, str], at: datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = at.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), text)
    return buffer.getvalue()


def export_format(value: str) -> ExportFormat:
    if value == "json":
        return "json"
    if value == "csv":
        return "csv"
    raise ValidationError(f"must be json or csv, not {value!r}", field="format")


def render(document: Mapping[str, Any], fmt: ExportFormat, at: datetime) -> bytes:
    if fmt == "json":
        return render_json(document)
    return render_zip(render_csv(document), at)


# --- validation of an export ------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedExport:
    """A validated export: column values ready to insert, with the document's ids as keys."""

    user: dict[str, Any]
    tasks: tuple[tuple[int, dict[str, Any]], ...]  # (id, columns but user_id)
    runs: tuple[tuple[int, int, dict[str, Any]], ...]  # (id, task id, columns but task_id)
    notifications: tuple[tuple[int, dict[str, Any]], ...]  # (run id, columns but ids)


@contextlib.contextmanager
def _under(path: str) -> Iterator[None]:
    """Prefix the field of a ValidationError raised inside with ``path``."""
    try:
        yield
    except ValidationError as err:
        field = f"{path}.{err.field}" if err.field else path
        raise type(err)(err.message, field=field) from None


class _Obj:
    """One object of the document, read key by key; every error names its path."""

    def __init__(self, data: object, path: str, fields: Sequence[str], optional: str) -> None:
        if not isinstance(data, Mapping):
            raise ValidationError("must be an object", field=path or "file")
        self.data, self.path, self.optional = data, path, optional.split()
        for key in data:
            if key not in fields:
                raise ValidationError("is not a field of this export", field=self.at(str(key)))

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> Any:
        if key not in self.data and key not in self.optional:
            raise ValidationError("is required", field=self.at(key))
        return self.data.get(key)

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT_MAX:
            raise ValidationError(f"must be a whole number, 0 to {_INT_MAX}", field=self.at(key))
        return value

    def opt_int(self, key: str) -> int | None:
        return None if self.raw(key) is None else self.integer(key)

    def when(self, key: str) -> datetime:
        value = self.opt_when(key)
        if value is None:
            raise ValidationError("is required", field=self.at(key))
        return value

    def opt_when(self, key: str) -> datetime | None:
        value = self.raw(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
            if parsed is not None and parsed.utcoffset() is not None:
                return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
        reason = "must be an ISO-8601 date-time with its UTC offset"
        raise ValidationError(reason, field=self.at(key))

    def text(self, key: str, max_len: int | None = None) -> str:
        value = self.raw(key)
        if not isinstance(value, str) or (max_len is not None and len(value) > max_len):
            limit = "" if max_len is None else f" of at most {max_len} characters"
            raise ValidationError(f"must be text{limit}", field=self.at(key))
        if "\x00" in value:  # PostgreSQL text cannot hold it
            raise ValidationError("contains a NUL character", field=self.at(key))
        return value

    def opt_text(self, key: str, max_len: int | None = None) -> str | None:
        return None if self.raw(key) is None else self.text(key, max_len)

    def choice(self, key: str, allowed: type[StrEnum]) -> str:
        value = self.raw(key)
        if value not in {member.value for member in allowed}:
            names = ", ".join(member.value for member in allowed)
            raise ValidationError(f"must be one of {names}", field=self.at(key))
        return str(value)

    def id(self, key: str, seen: set[int]) -> int:
        value = self.integer(key)
        if value in seen:
            raise ValidationError(f"repeats the id {value}", field=self.at(key))
        seen.add(value)
        return value


def parse_document(data: object) -> ParsedExport:
    """Validate a decoded JSON export; raise ValidationError naming the first bad value."""
    _check_nesting(data)
    top = _Obj(data, "", _TOP_FIELDS, optional="exported_at")
    if top.raw("format") != FORMAT:
        raise ValidationError(f"is not {FORMAT!r}: not an export of this program", field="format")
    version = top.raw("version")
    if version != VERSION or isinstance(version, bool):
        raise ValidationError(
            f"{version!r} is not supported (this build reads {VERSION})", field="version"
        )
    user = _parse_user(top.raw("user"))
    seen: set[int] = set()
    tasks = tuple(_parse_task(item, i, seen) for i, item in enumerate(_list(top, "tasks")))
    task_ids = {task_id for task_id, _ in tasks}
    run_keys: set[tuple[int, datetime]] = set()
    seen = set()
    runs = tuple(
        _parse_run(item, i, task_ids, run_keys, seen) for i, item in enumerate(_list(top, "runs"))
    )
    run_tasks = {run_id: task_id for run_id, task_id, _ in runs}
    note_keys: set[tuple[int, str]] = set()
    seen = set()
    notes = tuple(
        _parse_notification(item, i, run_tasks, note_keys, seen)
        for i, item in enumerate(_list(top, "notifications"))
    )
    return ParsedExport(user, tasks, runs, notes)


def _list(top: _Obj, key: str) -> list[Any]:
    value = top.raw(key)
    if not isinstance(value, list):
        raise ValidationError("must be a list", field=key)
    return value


def _parse_user(data: object) -> dict[str, Any]:
    obj = _Obj(data, "user", USER_FIELDS, optional="email phone")
    name = check.text(obj.raw("display_name"), "user.display_name", max_len=check.NAME_MAX)
    with _under("user"):
        email, phone = check.email(obj.raw("email")), check.phone(obj.raw("phone"))
    return {
        "display_name": name,
        "email": email,
        "phone": phone,
        "timezone": check.timezone(obj.raw("timezone"), "user.timezone"),
        "created_at": obj.when("created_at"),
    }


def _parse_task(data: object, index: int, seen: set[int]) -> tuple[int, dict[str, Any]]:
    path = f"tasks[{index}]"
    obj = _Obj(data, path, TASK_FIELDS, optional="status_reason next_run_at last_run_at")
    task_id = obj.id("id", seen)
    created_at = obj.when("created_at")
    with _under(path):
        schedule = with_interval_anchor(parse_schedule(obj.raw("schedule")), created_at)
        fields = {
            "title": check.title(obj.raw("title")),
            "description": check.description(obj.raw("description")),
            "task_type": check.task_type(obj.raw("task_type")),
            "ai_context": check.ai_context(obj.raw("ai_context")),
            "notification_channels": check.channels(obj.raw("notification_channels")),
            "catch_up": check.catch_up(obj.raw("catch_up")),
            "max_retries": check.max_retries(obj.raw("max_retries")),
        }
    row = rows.new_task(
        fields, schedule=schedule, next_run_at=obj.opt_when("next_run_at"), now=created_at
    ) | {  # as it was exported: its status, its history
        "status": obj.choice("status", TaskStatus),
        "status_reason": obj.opt_text("status_reason"),
        "last_run_at": obj.opt_when("last_run_at"),
        "consecutive_failures": obj.integer("consecutive_failures"),
        "updated_at": obj.when("updated_at"),
    }
    return task_id, row


def _parse_run(
    data: object, index: int, task_ids: set[int], keys: set[tuple[int, datetime]], seen: set[int]
) -> tuple[int, int, dict[str, Any]]:
    optional = "started_at finished_at lease_expires_at worker_id result error agent_name"
    optional += " agent_model prompt_tokens completion_tokens"
    obj = _Obj(data, f"runs[{index}]", RUN_FIELDS, optional=optional)
    run_id = obj.id("id", seen)
    task_id = obj.integer("task_id")
    if task_id not in task_ids:
        raise ValidationError(f"task {task_id} is not in this export", field=obj.at("task_id"))
    scheduled_for = obj.when("scheduled_for")
    if (task_id, scheduled_for) in keys:
        raise ValidationError(f"task {task_id} has another run then", field=obj.at("scheduled_for"))
    keys.add((task_id, scheduled_for))
    row = {
        "scheduled_for": scheduled_for,
        "state": obj.choice("state", RunState),
        "attempt": obj.integer("attempt"),
        "queued_at": obj.when("queued_at"),
        "started_at": obj.opt_when("started_at"),
        "finished_at": obj.opt_when("finished_at"),
        "lease_expires_at": obj.opt_when("lease_expires_at"),
        "worker_id": obj.opt_text("worker_id", 200),
        "result": obj.opt_text("result"),
        "error": obj.opt_text("error"),
        "agent_name": obj.opt_text("agent_name", 64),
        "agent_model": obj.opt_text("agent_model", 200),
        "prompt_tokens": obj.opt_int("prompt_tokens"),
        "completion_tokens": obj.opt_int("completion_tokens"),
    }
    return run_id, task_id, row


def _parse_notification(
    data: object, index: int, run_tasks: dict[int, int], keys: set[tuple[int, str]], seen: set[int]
) -> tuple[int, dict[str, Any]]:
    optional = "last_error next_attempt_at delivered_at read_at"
    obj = _Obj(data, f"notifications[{index}]", NOTIFICATION_FIELDS, optional=optional)
    obj.id("id", seen)
    run_id = obj.integer("run_id")
    if run_id not in run_tasks:
        raise ValidationError(f"run {run_id} is not in this export", field=obj.at("run_id"))
    if obj.integer("task_id") != run_tasks[run_id]:
        raise ValidationError(f"is not the task of run {run_id}", field=obj.at("task_id"))
    channel = obj.text("channel", 32)
    if not channel or (run_id, channel) in keys:
        raise ValidationError(
            f"run {run_id} has another notification on this channel", field=obj.at("channel")
        )
    keys.add((run_id, channel))
    row = {
        "channel": channel,
        "status": obj.choice("status", NotificationStatus),
        "title": obj.text("title", 200),
        "body": obj.text("body"),
        "attempts": obj.integer("attempts"),
        "last_error": obj.opt_text("last_error"),
        "next_attempt_at": obj.opt_when("next_attempt_at"),
        "created_at": obj.when("created_at"),
        "delivered_at": obj.opt_when("delivered_at"),
        "read_at": obj.opt_when("read_at"),
    }
    return run_id, row


def imported_next_run(
    schedule: Schedule, stored: datetime | None, now: datetime
) -> datetime | None:
    """When an imported task is next due, computed from ``now``, not trusted from the file.

    A past ``next_run_at`` would have the scheduler plan every firing since (up to
    ``CATCHUP_LIMIT`` runs per task under ``all``, as many skipped records under ``once`` and
    ``skip``): 100,000 imported tasks, millions of rows. Firings missed while the task was
    outside this deployment are not owed; the task is due at its most recent firing at or
    before ``now``, and the scheduler applies the task's catch-up policy to that one firing
    (a run; under ``skip``, a skipped record unless it is within ``MISFIRE_GRACE``). A
    ``next_run_at`` still to come is kept, and so is none (no firing left).
    """
    if stored is None or stored > now:
        return stored
    plan = plan_due(schedule, stored, now, "once", grace=timedelta(0), limit=1)
    return plan.firings[-1].scheduled_for  # oldest first: the last is the most recent


def rebase(parsed: ParsedExport, now: datetime) -> ParsedExport:
    """``parsed`` with each task's ``next_run_at`` from :func:`imported_next_run`."""
    tasks = tuple(
        (
            task_id,
            row
            | {
                "next_run_at": imported_next_run(
                    parse_schedule(row["schedule"]), row["next_run_at"], now
                )
            },
        )
        for task_id, row in parsed.tasks
    )
    return replace(parsed, tasks=tasks)


def load_json(raw: bytes) -> object:
    """Decode an import file; ValidationError (``file``) for anything but JSON, for a document
    nested so deep that the decoder runs out of stack, and for a number of more than 4,300
    digits (which Python refuses to convert)."""
    if raw.startswith(b"PK\x03\x04"):
        raise ValidationError("is a zip (a CSV export): only JSON exports import", field="file")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"is not a JSON export (only JSON exports can be imported): {exc}"
        raise ValidationError(reason, field="file") from None
    except ValueError:  # int() of a number of more than 4,300 digits
        reason = "is not a JSON export: it holds a number of more than 4,300 digits"
        raise ValidationError(reason, field="file") from None
    return data  # its nesting is checked by parse_document


#: Levels of arrays and objects an import document may have: the document, its lists, their
#: rows, and 60 more for the JSON values in a row (``ai_context``).
MAX_NESTING = 64


def _too_deep() -> ValidationError:
    return ValidationError(f"is nested more than {MAX_NESTING} levels deep", field="file")


def _check_nesting(data: object) -> None:
    """Refuse a document nested deeper than :data:`MAX_NESTING` (walked without recursion)."""
    pending: list[tuple[dict[Any, Any] | list[Any], int]] = []
    if isinstance(data, dict | list):
        pending.append((data, 1))
    while pending:
        value, depth = pending.pop()
        if depth > MAX_NESTING:
            raise _too_deep()
        items = value.values() if isinstance(value, dict) else value
        pending.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
