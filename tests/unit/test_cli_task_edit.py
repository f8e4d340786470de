"""The pure parts of ``pa task edit`` and ``pa task list`` pages, and what ``pa user remove``
rests on: every foreign key to ``users`` cascades."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.cli.paging import next_page
from personal_assistant.cli.schedule_options import ScheduleOptions
from personal_assistant.cli.task_edit import new_schedule, next_firings
from personal_assistant.database.models import AITask, Base
from personal_assistant.errors import ValidationError

NOW = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
DAILY = {"kind": "daily", "times": ["09:00"], "timezone": "Europe/Paris"}
BOUNDED = {**DAILY, "start": "2026-12-10T09:00:00+01:00", "end": "2027-01-31T09:00:00+01:00"}


@pytest.mark.parametrize(
    ("options", "current", "expected"),
    [
        # No schedule option: the schedule is not touched.
        (ScheduleOptions(), DAILY, None),
        # A kind: a new schedule, in the task's zone unless --tz says otherwise.
        (ScheduleOptions(daily="10:00"), DAILY, {**DAILY, "times": ["10:00"]}),
        (
            ScheduleOptions(cron="0 9 * * 1-5", tz="UTC"),
            DAILY,
            {"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "UTC"},
        ),
        # ... without the old bounds unless given again.
        (ScheduleOptions(daily="10:00"), BOUNDED, {**DAILY, "times": ["10:00"]}),
        (
            ScheduleOptions(weekly="mon@08:00", end="2027-03-01 08:00"),
            BOUNDED,
            {
                "kind": "weekly",
                "weekdays": ["mon"],
                "times": ["08:00"],
                "end": "2027-03-01 08:00",
                "timezone": "Europe/Paris",
            },
        ),
        # --start, --end or --tz alone: only that part of the current schedule.
        (ScheduleOptions(tz=" Asia/Tokyo "), BOUNDED, {**BOUNDED, "timezone": "Asia/Tokyo"}),
        (
            ScheduleOptions(end="2027-06-30 09:00"),
            BOUNDED,
            {**BOUNDED, "end": "2027-06-30 09:00"},
        ),
        (ScheduleOptions(start="2027-01-01 09:00"), DAILY, {**DAILY, "start": "2027-01-01 09:00"}),
    ],
)
def test_new_schedule(
    options: ScheduleOptions, current: dict[str, object], expected: dict[str, object] | None
) -> None:
    assert new_schedule(options, dict(current), NOW) == expected


def test_new_schedule_in_anchors_at_now_and_two_kinds_are_refused() -> None:
    assert new_schedule(ScheduleOptions(in_="2h"), DAILY, NOW) == {
        "kind": "once",
        "at": (NOW + timedelta(hours=2)).isoformat(),
        "timezone": "Europe/Paris",
    }
    with pytest.raises(ValidationError) as refused:
        new_schedule(ScheduleOptions(daily="09:00", every="1h"), DAILY, NOW)
    assert refused.value.field == "schedule"


def _task(status: str, next_run_at: datetime | None) -> AITask:
    return AITask(status=status, schedule=dict(DAILY), next_run_at=next_run_at)


def test_next_firings_start_at_an_active_tasks_next_run() -> None:
    # The next run may be past a firing that has its run already: the list starts there.
    later = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    assert next_firings(_task("active", later), NOW) == [
        later,
        later + timedelta(days=1),
        later + timedelta(days=2),
    ]
    paused = next_firings(_task("paused", None), NOW)
    assert paused[0] == datetime(2026, 12, 5, 8, 0, tzinfo=UTC) and len(paused) == 3
    assert next_firings(_task("completed", None), NOW) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), "showing 100 tasks; more exist. Next page: pa task list --after 7"),
        (
            (("--status", "active"), ("--type", None), ("--limit", 2), ("--json", True)),
            "showing 100 tasks; more exist. Next page: pa task list --after 7 --status active "
            "--limit 2 --json",
        ),
        ((("--json", False), ("--user", 3)), "... pa task list --after 7 --user 3"),
        ((("--type", "a b"),), "... pa task list --after 7 --type 'a b'"),
    ],
)
def test_next_page_repeats_the_options(
    options: tuple[tuple[str, object], ...], expected: str
) -> None:
    notice = next_page("pa task list", 100, 7, options)
    if expected.startswith("... "):
        assert notice.endswith(expected.removeprefix("... "))
    else:
        assert notice == expected


def test_every_foreign_key_to_users_cascades() -> None:
    """``pa user remove`` is one DELETE: a new table that refers to users must cascade too."""
    found = [
        (table.name, fk.ondelete)
        for table in Base.metadata.tables.values()
        for fk in table.foreign_keys
        if fk.column.table.name == "users"
    ]
    assert len(found) >= 6
    assert [name for name, ondelete in found if ondelete != "CASCADE"] == []
