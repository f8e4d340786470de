"""The prompt builder, by table: exact messages for each kind of task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.agents.base import AgentRequest, PreviousResult
from personal_assistant.agents.prompt import RESULT_LIMIT, build_messages

WHEN = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)  # a Sunday, 09:00 in Paris

SYSTEM = (
    "You are a personal assistant running a scheduled task for {owner}. Answer with the "
    "result itself, concise and useful, in plain text. "
)
REMINDER = SYSTEM + "Write the reminder itself: one or two friendly sentences for {owner}."
REPORT = (
    SYSTEM + "When previous results are given (newest first), say what changed since the last run."
)


def at(day: int, hour: int = 8) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def request(**overrides: Any) -> AgentRequest:
    timezone = overrides.pop("timezone", "Europe/Paris")
    fields: dict[str, Any] = {
        "task_id": 1,
        "run_id": 7,
        "title": "Water the plants",
        "instruction": "The ones on the balcony.",
        "task_type": "reminder",
        "ai_context": {},
        "owner_name": "Ada",
        "timezone": timezone,
        "scheduled_for": WHEN,
        "local_time": WHEN.astimezone(ZoneInfo(timezone)),
        "attempt": 1,
    }
    fields.update(overrides)
    return AgentRequest(**fields)


CASES: list[tuple[str, AgentRequest, str, list[str]]] = [
    (
        "reminder",
        request(ai_context={"simulate_failure": "drill"}),
        REMINDER.format(owner="Ada"),
        [
            "Task: Water the plants",
            "Type: reminder",
            "Local time: 2026-11-29 09:00 (Europe/Paris), Sunday",
            "Instruction: The ones on the balcony.",
        ],
    ),
    (
        "periodic, first run",
        request(title="Inbox summary", instruction="What arrived?", task_type="periodic_task"),
        REPORT.format(owner="Ada"),
        [
            "Task: Inbox summary",
            "Type: periodic_task",
            "Local time: 2026-11-29 09:00 (Europe/Paris), Sunday",
            "Instruction: What arrived?",
            "Previous results: none, this is the first run.",
        ],
    ),
    (
        "periodic with history, given oldest first",
        request(
            title="Inbox summary",
            instruction="",
            task_type="periodic_task",
            previous_results=(
                PreviousResult(at(26), ""),
                PreviousResult(at(27), "2 new mails:\n- invoice\n- newsletter\n"),
                PreviousResult(at(28), "  3 new mails  "),
            ),
        ),
        REPORT.format(owner="Ada"),
        [
            "Task: Inbox summary",
            "Type: periodic_task",
            "Local time: 2026-11-29 09:00 (Europe/Paris), Sunday",
            "Previous result (2026-11-28 08:00 UTC): 3 new mails",
            "Previous result (2026-11-27 08:00 UTC): 2 new mails:",
            "  - invoice",
            "  - newsletter",
            "Previous result (2026-11-26 08:00 UTC): (empty)",
        ],
    ),
    (
        "automated task with context",
        request(
            title="Weather check",
            instruction="Should I take an umbrella?",
            task_type="automated_task",
            ai_context={
                "simulate_delay_seconds": 2,
                "simulate_failure_attempts": 1,
                "city": "Lyon",
                "alerts": ["rain", "wind"],
                "units": {"temp": "C"},
            },
        ),
        REPORT.format(owner="Ada"),
        [
            "Task: Weather check",
            "Type: automated_task",
            "Local time: 2026-11-29 09:00 (Europe/Paris), Sunday",
            "Instruction: Should I take an umbrella?",
            'Context: {"alerts": ["rain", "wind"], "city": "Lyon", "units": {"temp": "C"}}',
            "Previous results: none, this is the first run.",
        ],
    ),
    (
        "unicode, another zone",
        request(
            title="  Café ☕ with Zoë  ",
            instruction="  Réserver une table près de 東京駅.  ",
            owner_name="Łukasz Ørsted",
            timezone="Asia/Tokyo",
            ai_context={"lieu": "Shibuya — 渋谷"},
        ),
        REMINDER.format(owner="Łukasz Ørsted"),
        [
            "Task: Café ☕ with Zoë",
            "Type: reminder",
            "Local time: 2026-11-29 17:00 (Asia/Tokyo), Sunday",
            "Instruction: Réserver une table près de 東京駅.",
            'Context: {"lieu": "Shibuya — 渋谷"}',
        ],
    ),
    (
        "braces in names are text, not format fields",
        request(owner_name="{owner}", title="{title}", instruction="{0}"),
        REMINDER.format(owner="{owner}"),
        [
            "Task: {title}",
            "Type: reminder",
            "Local time: 2026-11-29 09:00 (Europe/Paris), Sunday",
            "Instruction: {0}",
        ],
    ),
]


@pytest.mark.parametrize(
    ("request_", "system", "user"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_build_messages(request_: AgentRequest, system: str, user: list[str]) -> None:
    assert build_messages(request_) == [
        {"role": "system", "content": system},
        {"role": "user", "content": "\n".join(user)},
    ]


def test_long_previous_results_are_clipped() -> None:
    long = "x" * (RESULT_LIMIT + 500)
    messages = build_messages(
        request(task_type="periodic_task", previous_results=(PreviousResult(at(28), long),))
    )
    last = messages[1]["content"].splitlines()[-1]
    assert last == "Previous result (2026-11-28 08:00 UTC): " + "x" * (RESULT_LIMIT - 1) + "…"
