from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.agents.base import AgentRequest, PreviousResult
from personal_assistant.agents.offline import OfflineAgent, compose
from personal_assistant.agents.prompt import build_messages
from personal_assistant.errors import AgentError
from personal_assistant.notifications.content import compose as compose_note
from personal_assistant.runs.executor import TaskExecutor

WHEN = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def request(**overrides: object) -> AgentRequest:
    fields: dict[str, object] = dict(
        task_id=1,
        run_id=7,
        title="Water the plants",
        instruction="The ones on the balcony.",
        task_type="reminder",
        ai_context={},
        owner_name="Ada",
        timezone="Europe/Paris",
        scheduled_for=WHEN,
        local_time=WHEN.astimezone(ZoneInfo("Europe/Paris")),
        attempt=1,
    )
    fields.update(overrides)
    return AgentRequest(**fields)  # type: ignore[arg-type]


def test_offline_reminder_says_what_and_when() -> None:
    assert compose(request()) == (
        "Reminder for Ada: Water the plants. The ones on the balcony.\n"
        "It is Sunday 29 November 2026, 09:00 (Europe/Paris)."
    )


def test_offline_report_mentions_the_previous_result() -> None:
    text = compose(
        request(
            task_type="periodic_task",
            title="Inbox summary",
            ai_context={"folder": "inbox"},
            previous_results=(
                PreviousResult(datetime(2026, 11, 28, 8, tzinfo=UTC), "3 new mails"),
            ),
        )
    )
    assert text.splitlines() == [
        "Inbox summary: report for Ada, Sunday 29 November 2026, 09:00 (Europe/Paris).",
        "Instruction: The ones on the balcony.",
        "This is run 2 of those on record; the last one (2026-11-28 08:00 UTC) said: 3 new mails",
        "Context: folder='inbox'",
    ]


def test_simulated_failures() -> None:
    agent = OfflineAgent()
    with pytest.raises(AgentError) as err:
        asyncio.run(agent.complete(request(ai_context={"simulate_failure": "down"})))
    assert not err.value.permanent
    first_only = {"simulate_failure": "flaky", "simulate_failure_attempts": 1}
    asyncio.run(agent.complete(request(ai_context=first_only, attempt=2)))


def test_executor_turns_errors_into_outcomes() -> None:
    executor = TaskExecutor(OfflineAgent(), timeout=5)
    failed = asyncio.run(
        executor.execute(
            request(ai_context={"simulate_failure": "no", "simulate_failure_permanent": True})
        )
    )
    assert not failed.ok and failed.permanent and failed.error == "simulated failure: no"
    ok = asyncio.run(executor.execute(request()))
    assert ok.ok and ok.reply is not None and ok.agent_name == "offline"


def test_executor_times_out_honestly() -> None:
    class Slow:
        name = "slow"

        async def complete(self, req: AgentRequest) -> None:
            await asyncio.sleep(5)

        async def aclose(self) -> None:
            return None

    outcome = asyncio.run(TaskExecutor(Slow(), timeout=0.05).execute(request()))  # type: ignore[arg-type]
    assert not outcome.ok and outcome.error == "the agent did not answer within 0.05 s"


def test_prompt_carries_task_owner_time_and_history() -> None:
    messages = build_messages(
        request(
            previous_results=(PreviousResult(datetime(2026, 11, 28, 8, tzinfo=UTC), "dry soil"),),
            ai_context={"simulate_failure": "x", "plants": 3},
        )
    )
    assert messages[0]["role"] == "system" and "Ada" in messages[0]["content"]
    user = messages[1]["content"]
    assert "Task: Water the plants" in user
    assert "Local time: 2026-11-29 09:00 (Europe/Paris)" in user
    assert 'Context: {"plants": 3}' in user
    assert "Previous result (2026-11-28 08:00 UTC): dry soil" in user


def test_notification_text_is_trimmed_at_a_word_boundary() -> None:
    message = compose_note("Report", succeeded=True, text="word " * 2000)
    assert len(message.body) <= 4000 and message.body.endswith("word…")
    failed = compose_note("Report", succeeded=False, text="failed after 3 attempts: boom")
    assert failed.title == "Failed: Report"
    assert failed.body == "The task could not be completed: failed after 3 attempts: boom"
