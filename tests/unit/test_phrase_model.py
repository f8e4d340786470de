"""phrase_model: a model's reading of a request, checked strictly, and weighed against ours.

Every case is read at Sunday 2026-03-01 10:00 UTC (11:00 in Paris) unless it says otherwise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from personal_assistant.core import phrase_model
from personal_assistant.core.phrase_model import (
    DISAGREE,
    PARAMETERS,
    TOOL_NAME,
    combine,
    from_model,
    messages,
    same_schedule,
)
from personal_assistant.core.phrases import Proposal, Refusal, Span, parse_request
from personal_assistant.core.states import TaskType

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TZ = "Europe/Paris"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
MB = "x" * 1_000_000


def answer(**changes: Any) -> dict[str, Any]:
    """A good answer: every weekday at 08:30 in Paris, with ``changes`` applied."""
    base: dict[str, Any] = {
        "title": "Stretch",
        "instruction": "Remind me to stretch",
        "task_type": "reminder",
        "schedule": {"kind": "weekly", "weekdays": WEEKDAYS, "times": ["08:30"]},
    }
    base.update(changes)
    return base


def schedule(**fields: Any) -> dict[str, Any]:
    return answer(schedule=fields)


def refused(arguments: object) -> Refusal:
    got = from_model(arguments, NOW, TZ)
    assert isinstance(got, Refusal), got
    assert got.closest is None and got.other is None
    assert got.reason.startswith("The model's answer was not usable: ")
    assert len(got.reason) < 400
    return got


def proposal(title: str, sched: dict[str, Any], source: str = "offline") -> Proposal:
    return Proposal(title, title, "reminder", sched, (Span(0, 3, "when"),), source=source)


WEEKLY = {"kind": "weekly", "weekdays": WEEKDAYS, "times": ["09:00"], "timezone": TZ}
CRON = {"kind": "cron", "expression": "0 9 * * 1-5", "timezone": TZ}
DAILY = {"kind": "daily", "times": ["09:00"], "timezone": TZ}
DAILY_10 = {"kind": "daily", "times": ["10:00"], "timezone": TZ}


# The schema and the messages ---------------------------------------------------------------


def test_the_schema_names_every_task_type_and_kind() -> None:
    props = PARAMETERS["properties"]
    assert props["task_type"]["enum"] == [t.value for t in TaskType]
    assert props["schedule"]["properties"]["kind"]["enum"] == [
        "once",
        "interval",
        "daily",
        "weekly",
        "monthly",
        "cron",
    ]
    assert props["title"]["maxLength"] == 80 and props["instruction"]["maxLength"] == 2000
    assert set(PARAMETERS["required"]) == {"title", "instruction", "task_type", "schedule"}
    assert "unsure" in props and "unsure" not in PARAMETERS["required"]
    json.dumps(PARAMETERS)  # plain JSON


def test_messages_say_now_in_the_users_zone_then_the_text() -> None:
    system, user = messages("remind me at 9 to stretch", NOW, TZ)
    assert system["role"] == "system" and user == {
        "role": "user",
        "content": "remind me at 9 to stretch",
    }
    text = system["content"]
    assert "Now is 2026-03-01T11:00 (Sunday) in Europe/Paris" in text
    assert TOOL_NAME in text and "unsure" in text
    assert "every_days" in text and "every_weeks" in text
    assert text.count(" -> {") == 5  # the examples


def test_messages_take_an_aware_now() -> None:
    with pytest.raises(ValueError):
        messages("x", NOW.replace(tzinfo=None), TZ)


# from_model: good answers ------------------------------------------------------------------


def test_a_good_answer_is_a_model_proposal_in_canonical_form() -> None:
    got = from_model(answer(title="  Stretch "), NOW, TZ)
    assert got == Proposal(
        title="Stretch",
        instruction="Remind me to stretch",
        task_type="reminder",
        schedule={"kind": "weekly", "weekdays": WEEKDAYS, "times": ["08:30"], "timezone": TZ},
        spans=(),
        source="model",
    )


def test_local_times_are_read_in_the_schedules_zone() -> None:
    got = from_model(schedule(kind="once", at="2026-03-02T17:00", timezone="Asia/Tokyo"), NOW, TZ)
    assert isinstance(got, Proposal)
    assert got.schedule == {
        "kind": "once",
        "at": "2026-03-02T08:00:00+00:00",
        "timezone": "Asia/Tokyo",
    }


def test_unsure_is_a_refusal_offering_the_reading() -> None:
    got = from_model(
        answer(
            schedule={"kind": "once", "at": "2026-03-01T16:00"}, unsure="4 could be\n4am or 4pm."
        ),
        NOW,
        TZ,
    )
    assert isinstance(got, Refusal)
    assert got.reason == "The model is not sure: 4 could be 4am or 4pm."
    assert isinstance(got.closest, Proposal) and got.closest.source == "model"
    assert got.closest.schedule["at"] == "2026-03-01T15:00:00+00:00"


@pytest.mark.parametrize("unsure", ["", "   "])
def test_an_empty_unsure_is_no_doubt(unsure: str) -> None:
    assert isinstance(from_model(answer(unsure=unsure), NOW, TZ), Proposal)


# from_model: bad and hostile answers -------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (None, "it is not an object"),
        ([answer()], "it is not an object"),
        ("{}", "it is not an object"),
        (answer(colour="red"), "unknown field 'colour'"),
        ({k: v for k, v in answer().items() if k != "title"}, "no title"),
        ({k: v for k, v in answer().items() if k != "schedule"}, "no schedule"),
        (answer(title=7), "title is not a string"),
        (answer(title=None), "title is not a string"),
        (answer(title=" "), "title is empty"),
        (answer(title="a" * 81), "title is 81 characters long; at most 80"),
        (answer(title=MB), "title is 1000000 characters long; at most 80"),
        (answer(title="Ring\x1b[2Jme"), "title holds control characters"),
        (answer(title="two\nlines"), "title holds control characters"),
        (answer(instruction=["Stretch"]), "instruction is not a string"),
        (answer(instruction=MB), "instruction is 1000000 characters long; at most 2000"),
        (answer(instruction="Stretch\x00"), "instruction holds control characters"),
        (answer(task_type="errand"), "task_type is not one of reminder, automated_task"),
        (answer(task_type=["reminder"]), "task_type is not one of"),
        (answer(unsure=3), "unsure is not a string"),
        (answer(unsure=MB), "unsure is 1000000 characters long; at most 300"),
        (answer(unsure="x\x1b[31m"), "unsure holds control characters"),
        (answer(schedule="every day"), "schedule is not an object"),
        (answer(schedule=None), "schedule is not an object"),
    ],
)
def test_bad_fields_are_named(arguments: object, problem: str) -> None:
    assert problem in refused(arguments).reason


@pytest.mark.parametrize(
    ("sched", "problem"),
    [
        ({"kind": "yearly", "times": ["09:00"]}, "unknown kind 'yearly'"),
        ({"times": ["09:00"]}, "schedule.kind: is required"),
        ({"kind": "daily"}, "schedule.times: is required"),
        ({"kind": "daily", "times": "09:00"}, "schedule.times: must be a list"),
        ({"kind": "daily", "times": ["9am"]}, "not a time of day"),
        ({"kind": "daily", "times": ["09:00"], "colour": "red"}, "schedule.colour: unknown key"),
        ({"kind": "daily", "times": ["09:00"], "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"kind": "once", "at": "2026-02-28T09:00"}, "schedule.at: is in the past"),
        ({"kind": "once", "at": "2026-03-01T10:59"}, "schedule.at: is in the past"),
        ({"kind": "once", "at": "tomorrow"}, "not an ISO-8601 date-time"),
        ({"kind": "daily", "times": ["09:00"], "end": "2026-02-01T00:00"}, "no firing after now"),
        ({"kind": "interval", "every_seconds": 5}, "between 60 s and 3650 days"),
        ({"kind": "interval", "every_seconds": True}, "not a string, an integer or a list"),
        ({"kind": "monthly", "day": 32, "times": ["09:00"]}, "schedule.day"),
        ({"kind": "monthly", "day": 1.5, "times": ["09:00"]}, "not a string, an integer or a"),
        ({"kind": "cron", "expression": "61 * * * *"}, "schedule"),
        ({"kind": "cron", "expression": MB}, "schedule.expression is longer than 200"),
        ({"kind": "once", "at": MB}, "schedule.at is longer than 200 characters"),
        ({"kind": "daily", "times": ["09:00"] * 51}, "schedule.times has more than 50 items"),
        ({"kind": "daily", "times": [["09:00"]]}, "not a string, an integer or a list"),
        ({"kind": "daily", "times": [{"h": 9}]}, "not a string, an integer or a list"),
        ({"kind": "daily", "times": ["09:00"], 3: "x"}, "a key that is not a short string"),
        ({f"k{i}": 1 for i in range(20)}, "schedule has too many fields"),
    ],
)
def test_bad_schedules_are_named(sched: dict[Any, Any], problem: str) -> None:
    assert problem in refused(answer(schedule=sched)).reason


def test_a_reason_quoting_a_bad_value_is_trimmed() -> None:
    bad = {"kind": "once", "at": "2026-13-" + "9" * 190}
    assert len(refused(answer(schedule=bad)).reason) <= 340


def test_deeply_nested_values_are_refused_without_recursion() -> None:
    nested: Any = "09:00"
    for _ in range(100_000):
        nested = [nested]
    assert "not a string" in refused(answer(schedule={"kind": "daily", "times": nested})).reason


def test_the_timezone_defaults_to_the_users_not_utc() -> None:
    got = from_model(schedule(kind="daily", times=["09:00"]), NOW, "Asia/Tokyo")
    assert isinstance(got, Proposal) and got.schedule["timezone"] == "Asia/Tokyo"
    got = from_model(schedule(kind="daily", times=["09:00"], timezone=None), NOW, TZ)
    assert isinstance(got, Proposal) and got.schedule["timezone"] == TZ


def test_null_schedule_fields_are_not_given() -> None:
    got = from_model(schedule(kind="daily", times=["09:00"], start=None, end=None), NOW, TZ)
    assert isinstance(got, Proposal)
    assert got.schedule == {"kind": "daily", "times": ["09:00"], "timezone": TZ}


# same_schedule ---------------------------------------------------------------------------


def test_same_canonical_form_is_the_same_schedule() -> None:
    spelled = {"kind": "weekly", "weekdays": ["Friday", 0, "tue", "wed", "thu"], "time": "9:00"}
    assert same_schedule(WEEKLY, {**spelled, "timezone": TZ}, NOW)


def test_weekdays_and_their_cron_agree() -> None:
    assert same_schedule(WEEKLY, CRON, NOW)
    assert same_schedule(CRON, WEEKLY, NOW)


@pytest.mark.parametrize(
    "other",
    [
        DAILY,  # fires at weekends too
        {**WEEKLY, "timezone": "Europe/Berlin"},  # the same firings, another zone
        {**CRON, "end": "2026-12-31T23:59:59"},  # another end
        {"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "UTC"},
        {"kind": "interval", "every_seconds": 86400, "start": "2026-03-02T09:00", "timezone": TZ},
        {"kind": "yearly"},  # not a schedule at all
    ],
)
def test_different_schedules_differ(other: dict[str, Any]) -> None:
    assert not same_schedule(WEEKLY, other, NOW)


def test_24_hours_is_not_a_daily_time_across_dst() -> None:
    """Alike for the first ten firings (before 29 March), an hour apart after."""
    interval = {"kind": "interval", "every_seconds": 86400, "start": "2026-03-02T09:00"}
    assert not same_schedule(DAILY, {**interval, "timezone": TZ}, NOW)


def test_an_interval_from_creation_is_not_a_cron_on_the_half_hour() -> None:
    interval = {"kind": "interval", "every_seconds": 1800, "timezone": TZ}
    assert not same_schedule(interval, {"kind": "cron", "expression": "*/30 * * * *"}, NOW)
    assert same_schedule(interval, dict(interval), NOW)


def test_two_once_schedules_at_the_same_instant_agree() -> None:
    local = {"kind": "once", "at": "2026-03-02T17:00", "timezone": TZ}
    utc = {"kind": "once", "at": "2026-03-02T16:00:00+00:00", "timezone": TZ}
    assert same_schedule(local, utc, NOW)


# combine -----------------------------------------------------------------------------------

OFFLINE = proposal("Stretch", WEEKLY)
MODEL_SAME = proposal("Do stretches", CRON, "model")
MODEL_OTHER = proposal("Stretch", DAILY, "model")


def test_no_model_leaves_the_offline_reading() -> None:
    refusal = Refusal("Not sure: x.", OFFLINE)
    assert combine(OFFLINE, None, NOW) is OFFLINE
    assert combine(refusal, None, NOW) is refusal


def test_agreeing_proposals_keep_the_offline_one() -> None:
    got = combine(OFFLINE, MODEL_SAME, NOW)
    assert isinstance(got, Proposal)
    assert got.title == "Stretch" and got.schedule == WEEKLY and got.spans == OFFLINE.spans
    assert got.source == "offline+model"


def test_different_proposals_are_a_question_offering_both() -> None:
    got = combine(OFFLINE, MODEL_OTHER, NOW)
    assert got == Refusal(DISAGREE, OFFLINE, other=MODEL_OTHER)


def test_a_model_refusal_leaves_an_offline_proposal() -> None:
    assert combine(OFFLINE, Refusal("The model is not sure: x", MODEL_OTHER), NOW) is OFFLINE
    assert combine(OFFLINE, Refusal("The model's answer was not usable: x.", None), NOW) is (
        OFFLINE
    )


def test_only_the_model_read_it_offers_the_models_reading() -> None:
    offline = Refusal("Could not read when to do this: no date.", None)
    got = combine(offline, MODEL_OTHER, NOW)
    assert got == Refusal(offline.reason, MODEL_OTHER, other=None)


def test_offline_doubt_and_a_model_reading_alike_offer_one() -> None:
    offline = Refusal("Not sure: x.", OFFLINE, field="text")
    assert combine(offline, MODEL_SAME, NOW) == offline


def test_offline_doubt_and_a_different_model_reading_offer_both() -> None:
    offline = Refusal("Not sure: x.", OFFLINE)
    got = combine(offline, MODEL_OTHER, NOW)
    assert got == Refusal("Not sure: x.", OFFLINE, other=MODEL_OTHER)


def test_two_refusals_leave_the_offline_one() -> None:
    offline = Refusal("Not sure: x.", OFFLINE)
    assert combine(offline, Refusal("The model is not sure: y", MODEL_OTHER), NOW) is offline
    bare = Refusal("Could not read when to do this.", None)
    assert combine(bare, Refusal("The model's answer was not usable: z.", None), NOW) is bare


def test_a_models_reading_is_never_a_proposal_alone() -> None:
    """Whatever the offline answer, a Proposal out of combine is the offline one."""
    readings: list[Proposal | Refusal] = [
        OFFLINE,
        Refusal("Not sure: x.", OFFLINE),
        Refusal("Could not read.", None),
    ]
    for offline in readings:
        for model in (MODEL_SAME, MODEL_OTHER, Refusal("m", MODEL_OTHER), None):
            got = combine(offline, model, NOW)
            if isinstance(got, Proposal):
                assert got.source in ("offline", "offline+model")
                assert got.title == OFFLINE.title and got.schedule == OFFLINE.schedule


def test_combine_with_the_real_offline_parser() -> None:
    offline = parse_request("remind me every weekday at 9 to stretch", NOW, TZ)
    model = from_model(answer(schedule=CRON), NOW, TZ)
    got = combine(offline, model, NOW)
    assert isinstance(got, Proposal) and got.source == "offline+model"


def test_the_module_stays_small() -> None:
    assert phrase_model.__file__ is not None
    with open(phrase_model.__file__, encoding="utf-8") as source:
        assert len(source.readlines()) <= 500
