"""``pa`` against hostile input, as a user runs it (issue 10, items 14 and 15): agent output
that holds terminal escape sequences is printed inert, a bidi override in a title is refused,
and odd schedule options, time zones and import files give one clean error line, never a
traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from personal_assistant.database.engine import make_sync_engine
from personal_assistant.database.models import Notification, TaskRun
from support.cli import Pa, ready

pytestmark = pytest.mark.e2e

CLEAR = "\x1b[2J\x1b[H"  # clears the screen and homes the cursor
TITLE = "\x1b]0;owned\x07"  # sets the terminal's window title
HOSTILE = f"{CLEAR}All quiet.{TITLE} \x9b31mred\u202e"


@pytest.fixture
def pa(tmp_path: Path) -> Pa:
    return ready(tmp_path)


def _hostile_run(pa: Pa) -> None:
    """A finished run and its notification whose texts hold escape sequences, as an agent
    could answer them (the worker stores the answer as given)."""
    pa.ok("task", "add", "Stand up", "--daily", "09:00")
    engine = make_sync_engine(pa.env["DATABASE_URL"])
    try:
        with Session(engine) as session, session.begin():
            at = datetime(2030, 1, 1, tzinfo=UTC)
            run = TaskRun(
                task_id=1,
                scheduled_for=at,
                state="succeeded",
                attempt=1,
                queued_at=at,
                finished_at=at,
                result=HOSTILE,
            )
            session.add(run)
            session.flush()
            session.add(
                Notification(
                    run_id=run.id,
                    task_id=1,
                    user_id=1,
                    channel="in_app",
                    status="delivered",
                    title="Stand up",
                    body=HOSTILE,
                    created_at=at,
                    delivered_at=at,
                )
            )
    finally:
        engine.dispose()


def _inert(text: str) -> None:
    for raw in ("\x1b", "\x9b", "\x07", "\u202e"):
        assert raw not in text, (raw, text)


def test_runs_and_notifications_print_no_escape_sequence(pa: Pa) -> None:
    _hostile_run(pa)
    for command in ("runs", "notifications"):
        table = pa.ok(command)
        _inert(table)
        assert "All quiet." in table
        _inert(pa.ok(command, "--json"))
    (run,) = pa.json("runs")
    assert run["result"] == HOSTILE  # scripts still get the data as stored
    assert pa.json("notifications")["notifications"][0]["body"] == HOSTILE


def test_a_bidi_override_in_a_title_is_refused(pa: Pa) -> None:
    error = pa.fails(2, "task", "add", "invoice\u202efdp.exe", "--daily", "09:00")
    assert error.startswith("error: title: ") and "U+202E" in error, error
    assert pa.json("task", "list") == []


def _clean(error: str, field: str) -> None:
    assert error.startswith(f"error: {field}: "), error
    assert len(error.strip().splitlines()) == 1, error
    assert "Traceback" not in error


DIGITS = "1" * 5000


@pytest.mark.parametrize(
    ("options", "field"),
    [
        pytest.param(("--every", "²"), "schedule.every", id="every-superscript"),
        pytest.param(("--every", DIGITS), "schedule.every", id="every-5000-digits"),
        pytest.param(("--every", DIGITS + "m"), "schedule.every", id="every-5000-digit-minutes"),
        pytest.param(("--in", "²"), "--in", id="in-superscript"),
        pytest.param(("--in", DIGITS), "--in", id="in-5000-digits"),
        pytest.param(("--monthly", "²@09:00"), "--monthly", id="monthly-superscript"),
        pytest.param(("--monthly", DIGITS + "@09:00"), "--monthly", id="monthly-5000-digits"),
        pytest.param(("--daily", "09:00", "--tz", "Europe"), "schedule.timezone", id="tz-dir"),
    ],
)
def test_odd_schedule_options_are_one_clean_error(
    pa: Pa, options: tuple[str, ...], field: str
) -> None:
    _clean(pa.fails(2, "task", "add", "x", *options), field)
    _clean(pa.fails(2, "task", "preview", *options), field)
    assert pa.json("task", "list") == []


def test_a_time_zone_that_is_a_directory_is_one_clean_error(pa: Pa) -> None:
    _clean(pa.fails(2, "user", "add", "Bob", "--tz", "Europe"), "timezone")
    assert [u["display_name"] for u in pa.json("user", "list")] == ["Ada"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100000-deep"),
        pytest.param('{"a": ' * 200 + "1" + "}" * 200, id="nested-200-deep"),
        pytest.param(f'{{"format": {DIGITS}}}', id="5000-digit-number"),
    ],
)
def test_a_hostile_import_file_is_one_clean_error(pa: Pa, tmp_path: Path, content: str) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(content)
    _clean(pa.fails(2, "import", str(path)), "file")
    assert [u["display_name"] for u in pa.json("user", "list")] == ["Ada"]
