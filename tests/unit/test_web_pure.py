"""The dashboard's pure parts: the task form's schedule fields both ways, the error field the
form marks, the hourly activity and the chart laid out from it, the time shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.app.dashboard import Hour, hourly
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.errors import ScheduleError
from personal_assistant.web.chart import layout
from personal_assistant.web.rendering import local, seconds
from personal_assistant.web.schedule_form import (
    ScheduleFields,
    form_field,
    from_schedule,
    to_schedule,
)
from personal_assistant.web.session import csrf_token, same

PARIS = "Europe/Paris"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            ScheduleFields(kind="weekly", weekdays=("mon", "fri"), times="17:30, 08:00 "),
            {"kind": "weekly", "weekdays": ["mon", "fri"], "times": ["17:30", "08:00"]},
        ),
        (
            ScheduleFields(kind="daily", times="09:00 18:30"),
            {"kind": "daily", "times": ["09:00", "18:30"]},
        ),
        (
            ScheduleFields(kind="daily", times="09:00", step="3"),
            {"kind": "daily", "times": ["09:00"], "every_days": 3},
        ),
        (
            ScheduleFields(kind="weekly", weekdays=("tue",), times="18:00", step="2"),
            {"kind": "weekly", "weekdays": ["tue"], "times": ["18:00"], "every_weeks": 2},
        ),
        (
            ScheduleFields(kind="weekly", weekdays=("tue",), times="18:00", step="x"),
            {"kind": "weekly", "weekdays": ["tue"], "times": ["18:00"], "every_weeks": "x"},
        ),
        (
            ScheduleFields(kind="monthly", day="1", times="07:00", step="2"),
            {"kind": "monthly", "day": 1, "times": ["07:00"]},
        ),
        (
            ScheduleFields(kind="monthly", day="31", times="07:00"),
            {"kind": "monthly", "day": 31, "times": ["07:00"]},
        ),
        (
            ScheduleFields(kind="monthly", day="x", times="07:00"),
            {"kind": "monthly", "day": "x", "times": ["07:00"]},
        ),
        (
            ScheduleFields(kind="interval", every="1h30m", timezone=PARIS),
            {"kind": "interval", "every": "1h30m", "timezone": PARIS},
        ),
        (
            ScheduleFields(kind="cron", expression="0 16 * * 5L"),
            {"kind": "cron", "expression": "0 16 * * 5L"},
        ),
        (
            ScheduleFields(kind="once", at="2030-01-01T10:00", end=""),
            {"kind": "once", "at": "2030-01-01T10:00"},
        ),
        (ScheduleFields(kind="once"), {"kind": "once"}),
        (
            ScheduleFields(kind="daily", times="", start="2030-01-01T00:00"),
            {"kind": "daily", "times": [], "start": "2030-01-01T00:00"},
        ),
    ],
)
def test_the_form_gives_the_chosen_kinds_fields_only(
    fields: ScheduleFields, expected: dict[str, object]
) -> None:
    assert to_schedule(fields) == expected


def test_an_unknown_kind_names_the_kind_field() -> None:
    with pytest.raises(ScheduleError) as caught:
        to_schedule(ScheduleFields(kind="hourly"))
    assert caught.value.field == "schedule.kind"
    assert form_field(caught.value.field) == "kind"


@pytest.mark.parametrize(
    "stored",
    [
        {"kind": "weekly", "weekdays": ["mon", "fri"], "times": ["08:00", "17:30"]},
        {"kind": "daily", "times": ["09:00:30"], "end": "2030-06-01T12:00:00+00:00"},
        {"kind": "monthly", "day": 31, "times": ["07:00"], "start": "2030-03-30T23:30:00+00:00"},
        {"kind": "interval", "every_seconds": 5400, "start": "2030-01-01T08:00:00+00:00"},
        {"kind": "cron", "expression": "0 16 * * 5L"},
        {"kind": "once", "at": "2030-07-01T06:15:00+00:00"},
        {"kind": "daily", "times": ["09:00"], "every_days": 3, "start": "2030-01-01T08:00:00Z"},
        {
            "kind": "weekly",
            "weekdays": ["tue"],
            "times": ["18:00"],
            "every_weeks": 2,
            "start": "2030-01-01T17:00:00Z",
        },
    ],
)
def test_a_stored_schedule_fills_the_form_and_comes_back_equal(stored: dict[str, object]) -> None:
    canonical = schedule_to_dict(parse_schedule({**stored, "timezone": PARIS}))
    fields = from_schedule(canonical)
    assert fields.timezone == PARIS
    assert schedule_to_dict(parse_schedule(to_schedule(fields))) == canonical


def test_instants_show_on_the_schedules_wall_clock() -> None:
    fields = from_schedule({"kind": "once", "at": "2030-07-01T06:15:00+00:00", "timezone": PARIS})
    assert fields.at == "2030-07-01T08:15"  # Paris is UTC+2 in July


@pytest.mark.parametrize(
    ("error", "field"),
    [
        ("schedule.times", "times"),
        ("schedule.time", "times"),
        ("schedule.every_seconds", "every"),
        ("schedule.every_days", "step"),
        ("schedule.every_weeks", "step"),
        ("schedule", "kind"),
        ("description", "instruction"),
        ("title", "title"),
        (None, None),
    ],
)
def test_an_errors_field_is_the_forms_field(error: str | None, field: str | None) -> None:
    assert form_field(error) == field


def test_runs_are_counted_by_the_hour_they_were_due() -> None:
    since = datetime(2030, 1, 1, 0, tzinfo=UTC)
    runs = [
        (since + timedelta(minutes=5), since + timedelta(minutes=5, seconds=2), "succeeded"),
        (since + timedelta(minutes=50), since + timedelta(minutes=50, seconds=9), "failed"),
        (since + timedelta(hours=2), None, "queued"),
        (since - timedelta(minutes=1), since, "succeeded"),  # before the period: left out
        (since + timedelta(hours=3), since + timedelta(hours=3), "succeeded"),  # after it
    ]
    hours = hourly(since, 3, runs)
    assert [h.runs for h in hours] == [2, 0, 1]
    assert [h.failed for h in hours] == [1, 0, 0]
    assert [h.max_late_s for h in hours] == [9.0, None, None]
    assert [h.start for h in hours] == [since + timedelta(hours=i) for i in range(3)]


def test_the_chart_scales_to_the_busiest_hour_and_the_latest_start() -> None:
    start = datetime(2030, 1, 1, 0, tzinfo=UTC)
    hours = [Hour(start + timedelta(hours=i)) for i in range(24)]
    hours[3] = Hour(hours[3].start, runs=7, failed=2, max_late_s=1.5)
    hours[4] = Hour(hours[4].start, runs=1, max_late_s=0.0)
    chart = layout(hours, ZoneInfo(PARIS))
    left, top, right, bottom = chart.plot
    assert chart.runs_max == 10 and chart.late_max_s == 2.0
    assert len(chart.bars) == 24
    busiest = chart.bars[3]
    assert busiest.height == pytest.approx((bottom - top) * 0.7)
    assert busiest.failed_height == pytest.approx((bottom - top) * 0.2)
    assert "04:00 7 run(s), 2 failed" in busiest.label  # 03:00 UTC is 04:00 in Paris
    assert [round(y, 1) for _, y in chart.late] == [bottom - (bottom - top) * 0.75, bottom]
    assert all(left <= b.x and b.x + b.width <= right for b in chart.bars)
    assert [t.text for t in chart.hour_ticks] == ["01:00", "07:00", "13:00", "19:00"]
    empty = layout([Hour(start)], ZoneInfo(PARIS))
    assert empty.runs_max == 1 and empty.late == () and empty.late_points == ""


def test_times_show_on_the_users_wall_clock() -> None:
    moment = datetime(2030, 7, 1, 6, 15, tzinfo=UTC)
    assert local(moment, PARIS) == "Mon 1 Jul 2030, 08:15 CEST"
    assert local("2030-01-01T06:15:30+00:00", "America/New_York") == (
        "Tue 1 Jan 2030, 01:15:30 EST"
    )
    assert local(None, PARIS) == "—"
    assert seconds(None) == "—" and seconds(2.44) == "2.4 s" and seconds(185) == "3m5s"


def test_the_csrf_token_follows_the_key_and_is_compared_as_text() -> None:
    token = csrf_token("pa_abc_def")
    assert token == csrf_token("pa_abc_def") != csrf_token("pa_abc_deg")
    assert "pa_abc_def" not in token and len(token) == 64
    assert same(token, token)
    assert not same(None, token) and not same("", token) and not same(token[:-1], token)
