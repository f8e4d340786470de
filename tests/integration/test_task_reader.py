"""A model reading tasks said in plain English: the OpenAI-compatible agent's ``call_tool``,
``ModelTaskReader`` and ``proposals.read_checked``, against a real chat-completions server on
loopback (``support.chat_server``). No database needed.

Every request is read at Sunday 2026-03-01 10:00 UTC (11:00 in Paris)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from personal_assistant.agents.openai_compat import OpenAICompatibleAgent
from personal_assistant.agents.task_reader import ModelTaskReader
from personal_assistant.config import Settings
from personal_assistant.core.phrase_model import DISAGREE, PARAMETERS, TOOL_NAME
from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.errors import AgentError
from personal_assistant.tasks import proposals
from support import chat_server
from support.chat_server import ChatServer, Reply, completion, error

pytestmark = pytest.mark.integration

KEY = "sk-test-DO-NOT-LEAK-77e2b0"
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TZ = "Europe/Paris"
TEXT = "remind me every weekday at 9 to stretch"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
CRON = {"kind": "cron", "expression": "0 9 * * 1-5"}
ANSWER: dict[str, Any] = {
    "title": "Stretch",
    "instruction": "Remind me to stretch",
    "task_type": "reminder",
    "schedule": {"kind": "weekly", "weekdays": WEEKDAYS, "times": ["09:00"]},
}


def tool_call(arguments: object) -> Reply:
    """A chat completion calling the task tool with ``arguments``."""
    return chat_server.tool_call(TOOL_NAME, arguments)


def raw_arguments(arguments: object) -> Reply:
    """A tool call whose ``arguments`` is sent as given (an object, as some servers do)."""
    call = {"id": "c", "type": "function", "function": {"name": TOOL_NAME, "arguments": arguments}}
    return _choice({"role": "assistant", "tool_calls": [call]}, "tool_calls")


def _choice(message: dict[str, Any], reason: str) -> Reply:
    body = {"model": "m", "choices": [{"index": 0, "message": message, "finish_reason": reason}]}
    return Reply(200, json.dumps(body).encode())


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as chat:
        yield chat


def read(server: ChatServer, text: str = TEXT, **options: Any) -> Proposal | Refusal:
    """One reading by a fresh reader on ``server``, closed afterwards."""

    async def call() -> Proposal | Refusal:
        reader = ModelTaskReader(agent(server, **options), budget=5.0)
        try:
            return await reader.read(text, NOW, TZ)
        finally:
            await reader.aclose()

    return asyncio.run(call())


def agent(server: ChatServer, **options: Any) -> OpenAICompatibleAgent:
    settings: dict[str, Any] = {"api_key": KEY, "timeout": 5.0, "backoff_base": 0.05}
    settings.update(options)
    return OpenAICompatibleAgent(server.base_url, "gpt-test", **settings)


def fails(server: ChatServer, **options: Any) -> AgentError:
    with pytest.raises(AgentError) as err:
        read(server, **options)
    assert KEY not in str(err.value) and KEY not in repr(err.value.args)
    return err.value


def settings_for(server: ChatServer, **env: str) -> Settings:
    values = {
        "AGENT": "openai",
        "AGENT_BASE_URL": server.base_url,
        "AGENT_MODEL": "llama3.2",
        "AGENT_API_KEY": KEY,
        "AGENT_TIMEOUT": "5",
    }
    values.update(env)
    return Settings(**values)  # type: ignore[arg-type]  # aliases are the init names


def read_checked(text: object, settings: Settings) -> Proposal | Refusal:
    return asyncio.run(proposals.read_checked(text, TZ, NOW, settings))


# call_tool and the reader ------------------------------------------------------------------


def test_a_tool_call_becomes_a_model_proposal(server: ChatServer) -> None:
    server.script(tool_call(ANSWER))
    got = read(server)
    assert got == Proposal(
        title="Stretch",
        instruction="Remind me to stretch",
        task_type="reminder",
        schedule={"kind": "weekly", "weekdays": WEEKDAYS, "times": ["09:00"], "timezone": TZ},
        spans=(),
        source="model",
    )


def test_the_request_names_the_tool_and_carries_the_text(server: ChatServer) -> None:
    server.script(tool_call(ANSWER))
    read(server, max_tokens=1200, temperature=0.7)
    [received] = server.received
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {KEY}"
    body = received.body
    assert body["model"] == "gpt-test" and body["max_tokens"] == 1200
    assert body["temperature"] == 0  # whatever the agent's own
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": TOOL_NAME,
                "description": body["tools"][0]["function"]["description"],
                "parameters": PARAMETERS,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": TOOL_NAME}}
    system, user = body["messages"]
    assert system["role"] == "system"
    assert "2026-03-01T11:00 (Sunday) in Europe/Paris" in system["content"]
    assert user == {"role": "user", "content": TEXT}


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(ANSWER),
        "```json\n" + json.dumps(ANSWER) + "\n```",
        "  " + json.dumps(ANSWER, indent=2) + "\n",
    ],
)
def test_json_in_the_content_is_read_too(server: ChatServer, content: str) -> None:
    server.script(completion(content))
    got = read(server)
    assert isinstance(got, Proposal) and got.title == "Stretch" and got.source == "model"


def test_arguments_given_as_an_object_are_read(server: ChatServer) -> None:
    server.script(raw_arguments(ANSWER))
    assert isinstance(read(server), Proposal)


def test_an_unsure_model_is_a_question(server: ChatServer) -> None:
    server.script(tool_call({**ANSWER, "unsure": "9 could be 9am or 9pm."}))
    got = read(server)
    assert isinstance(got, Refusal)
    assert got.reason == "The model is not sure: 9 could be 9am or 9pm."
    assert got.closest is not None and got.closest.source == "model"


def test_a_bad_answer_is_a_refusal_saying_why(server: ChatServer) -> None:
    server.script(tool_call({**ANSWER, "schedule": {"kind": "once", "at": "2020-01-01T09:00"}}))
    got = read(server)
    assert isinstance(got, Refusal) and got.closest is None
    assert got.reason == (
        "The model's answer was not usable: the schedule is not valid: schedule.at: is in the past."
    )


def test_500_then_success_retries(server: ChatServer, caplog: pytest.LogCaptureFixture) -> None:
    server.script(error(503, "overloaded"), tool_call(ANSWER))
    caplog.set_level(logging.WARNING, logger="personal_assistant.agents.openai_compat")
    assert isinstance(read(server), Proposal)
    first, second = server.received
    assert first.body == second.body
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("event=agent_retry status=503 ")
    assert f"tool={TOOL_NAME} model=gpt-test" in line and KEY not in line


def test_500_on_every_attempt_gives_up(server: ChatServer) -> None:
    server.script(error(500, "down"), error(500, "still down"))
    exc = fails(server, max_attempts=2)
    assert not exc.permanent
    assert exc.message == "the provider answered HTTP 500 on all 2 attempts: still down"


def test_400_is_permanent(server: ChatServer) -> None:
    server.script(error(400, "tool_choice is not supported by this model"))
    exc = fails(server)
    assert exc.permanent and len(server.received) == 1
    assert exc.message == (
        "the provider rejected the request (HTTP 400): tool_choice is not supported by this model"
    )


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (tool_call("{'title': 'Stretch'"), "the tool call's arguments are not JSON"),
        (tool_call("[1, 2]"), "the tool call's arguments are not a JSON object (list)"),
        (tool_call('"just a string"'), "the tool call's arguments are not a JSON object (str)"),
        (raw_arguments(7), "the tool call's arguments are not a JSON object (int)"),
        (tool_call("[" * 10_000 + "]" * 10_000), "the tool call's arguments are not"),
        (
            tool_call({**ANSWER, "instruction": "x" * 20_000}),
            "the tool call's arguments are 20",
        ),
        (
            raw_arguments({**ANSWER, "instruction": "x" * 20_000}),
            "characters long; at most 20000 are read",
        ),
        (completion("Sure! I will remind you."), "the tool call's arguments are not JSON"),
        (
            _choice({"role": "assistant", "content": ""}, "length"),
            "the agent's answer has no tool call (finish_reason=length)",
        ),
        (_choice({"role": "assistant", "tool_calls": []}, "stop"), "has no tool call"),
        (Reply(200, b'{"choices": []}'), "the agent's answer has no choices"),
        (Reply(200, b"<html>oops</html>", "text/html"), "the agent's answer is not JSON"),
    ],
)
def test_malformed_answers_are_clear_transient_errors(
    server: ChatServer, reply: Reply, message: str
) -> None:
    server.script(reply)
    exc = fails(server)
    assert message in exc.message and not exc.permanent
    assert len(server.received) == 1
    assert len(exc.message) < 200


def test_from_settings_builds_a_bounded_reader(server: ChatServer) -> None:
    async def call() -> tuple[Proposal | Refusal, str]:
        reader = ModelTaskReader.from_settings(settings_for(server))
        try:
            return await reader.read(TEXT, NOW, TZ), repr(reader)
        finally:
            await reader.aclose()

    server.script(tool_call(ANSWER))
    got, shown = asyncio.run(call())
    assert isinstance(got, Proposal) and KEY not in shown
    [received] = server.received
    assert received.body["model"] == "llama3.2"
    assert received.headers["authorization"] == f"Bearer {KEY}"


# read_checked ------------------------------------------------------------------------------


def test_agreement_is_the_offline_proposal_read_by_both(server: ChatServer) -> None:
    server.script(tool_call({**ANSWER, "title": "Do stretches", "schedule": CRON}))
    got = read_checked(TEXT, settings_for(server))
    assert isinstance(got, Proposal)
    assert got.source == "offline+model" and got.title == "Stretch" and got.spans
    assert got.schedule == {
        "kind": "weekly",
        "weekdays": WEEKDAYS,
        "times": ["09:00"],
        "timezone": TZ,
    }
    assert proposals.view(got)["source"] == "offline+model"
    [received] = server.received
    assert received.body["messages"][1]["content"] == TEXT


def test_disagreement_is_a_question_offering_both(server: ChatServer) -> None:
    server.script(tool_call({**ANSWER, "schedule": {"kind": "daily", "times": ["21:00"]}}))
    got = read_checked(TEXT, settings_for(server))
    assert isinstance(got, Refusal) and got.reason == DISAGREE
    assert got.closest is not None and got.closest.source == "offline"
    assert got.other is not None and got.other.source == "model"
    message = proposals.refused(got).message
    assert message.startswith(DISAGREE + " Did you mean: 'Stretch' (reminder), weekly")
    assert " Or: 'Stretch' (reminder), daily at 21:00 (Europe/Paris)?" in message


def test_only_the_model_read_it_is_a_question(server: ChatServer) -> None:
    text = "remind me to stretch"
    server.script(tool_call(ANSWER))
    got = read_checked(text, settings_for(server))
    assert isinstance(got, Refusal) and got.reason.startswith("Could not read when")
    assert got.closest is not None and got.closest.source == "model" and got.other is None


def test_a_failing_model_leaves_the_offline_reading(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(error(400, f"bad request: {TEXT} with key {KEY}"))
    caplog.set_level(logging.WARNING, logger="personal_assistant.tasks.proposals")
    got = read_checked(TEXT, settings_for(server))
    assert isinstance(got, Proposal) and got.source == "offline"
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        "event=proposal_model_failed permanent=True "
        "reason=the provider rejected the request (HTTP 400)"
    )
    assert TEXT not in caplog.text and KEY not in caplog.text


def test_a_malformed_model_answer_leaves_the_offline_reading(server: ChatServer) -> None:
    server.script(tool_call("not json"))
    got = read_checked(TEXT, settings_for(server))
    assert isinstance(got, Proposal) and got.source == "offline"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "x" * 501,
        "remind me\x1b[2J at 9",
        "rappelle-moi de boire de l'eau tous les jours à 9h",
        "🙂🙂🙂",
        42,
        None,
    ],
)
def test_bad_input_is_never_sent_to_the_model(server: ChatServer, text: object) -> None:
    got = read_checked(text, settings_for(server))
    assert isinstance(got, Refusal) and got.closest is None and got.other is None
    assert server.received == []


def test_without_a_model_configured_nothing_is_sent(server: ChatServer) -> None:
    got = read_checked(TEXT, settings_for(server, AGENT="offline"))
    assert isinstance(got, Proposal) and got.source == "offline"
    assert server.received == []
