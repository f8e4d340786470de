"""An agent's answer is outside input: the executor hands over only what a run can store.

``tests/chaos/test_poison.py`` found it: a reply with a NUL character failed the transaction that
records a whole batch of runs, so every run of the batch stayed ``running`` until the reaper
failed it as "the worker stopped before finishing it".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import String

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.database.models import TaskRun
from personal_assistant.errors import AgentError
from personal_assistant.runs.executor import (
    COUNT_MAX,
    MODEL_MAX,
    TaskExecutor,
    storable_reply,
    storable_text,
)

WHEN = datetime(2026, 3, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("plain answer", "plain answer"),
        ("half\x00and half", "halfand half"),
        ("\x00\x00", ""),
        ("cut emoji \ud83d here", "cut emoji \ufffd here"),
        ("lone low \udc00", "lone low \ufffd"),
        ("whole emoji \U0001f600 stays", "whole emoji \U0001f600 stays"),
        ("tabs\tand\nnewlines stay", "tabs\tand\nnewlines stay"),
    ],
)
def test_storable_text(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    stored.encode("utf-8")  # what PostgreSQL receives


@pytest.mark.parametrize(
    ("reply", "stored"),
    [
        (AgentReply("ok", "m", 1, 2), AgentReply("ok", "m", 1, 2)),
        (AgentReply("ok", "m" * 300, None, None), AgentReply("ok", "m" * MODEL_MAX, None, None)),
        (AgentReply("ok", "m\x00", 2**40, -1), AgentReply("ok", "m", None, None)),
        (AgentReply("ok", "m", COUNT_MAX, 0), AgentReply("ok", "m", COUNT_MAX, 0)),
    ],
)
def test_storable_reply(reply: AgentReply, stored: AgentReply) -> None:
    assert storable_reply(reply) == stored


def test_limits_match_the_columns() -> None:
    column = TaskRun.__table__.c.agent_model.type
    assert isinstance(column, String) and column.length == MODEL_MAX


class Scripted:
    """An agent that answers, or raises, as told."""

    name = "scripted"

    def __init__(self, reply: AgentReply | None = None, error: str = "") -> None:
        self.reply = reply
        self.error = error

    async def complete(self, request: AgentRequest) -> AgentReply:
        if self.reply is None:
            raise AgentError(self.error)
        return self.reply

    async def aclose(self) -> None:
        return None


def _execute(agent: Scripted) -> tuple[AgentReply | None, str | None]:
    request = AgentRequest(
        task_id=1,
        run_id=2,
        title="t",
        instruction="",
        task_type="periodic_task",
        ai_context={},
        owner_name="Ada",
        timezone="UTC",
        scheduled_for=WHEN,
        local_time=WHEN,
        attempt=1,
    )
    outcome = asyncio.run(TaskExecutor(agent, timeout=5).execute(request))
    return outcome.reply, outcome.error


def test_executor_stores_a_cleaned_answer() -> None:
    reply, error = _execute(Scripted(AgentReply("a\x00b \ud83d", "x" * 999, 2**33, 5)))
    assert error is None
    assert reply == AgentReply("ab \ufffd", "x" * MODEL_MAX, None, 5)


def test_an_answer_of_nothing_storable_is_no_answer() -> None:
    reply, error = _execute(Scripted(AgentReply("\x00 \x00", "m")))
    assert reply is None
    assert error == "the agent returned no text"


def test_an_error_quoting_the_provider_is_stored_cleaned() -> None:
    reply, error = _execute(Scripted(error="the provider rejected it: bad\x00 input \udc80"))
    assert reply is None
    assert error == "the provider rejected it: bad input \ufffd"
