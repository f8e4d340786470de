"""The OpenAI-compatible agent: its real HTTP client against a real chat-completions server on
loopback (``support.chat_server``). No database needed."""

from __future__ import annotations

import asyncio
import gzip
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.agents import chat_http
from personal_assistant.agents.base import AgentReply, AgentRequest, PreviousResult
from personal_assistant.agents.factory import build_agent
from personal_assistant.agents.openai_compat import OpenAICompatibleAgent, retry_after_seconds
from personal_assistant.agents.prompt import build_messages
from personal_assistant.config import Settings
from personal_assistant.errors import AgentError
from personal_assistant.runs.executor import Outcome, TaskExecutor
from support.chat_server import (
    ChatServer,
    Reply,
    completion,
    error,
    http_date,
    rate_limited,
)

pytestmark = pytest.mark.integration

KEY = "sk-test-DO-NOT-LEAK-4f9a1c"
WHEN = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
REQUEST = AgentRequest(
    task_id=3,
    run_id=11,
    title="Inbox summary",
    instruction="Summarise what arrived overnight.",
    task_type="periodic_task",
    ai_context={"folder": "inbox", "simulate_delay_seconds": 0},
    owner_name="Ada",
    timezone="Europe/Paris",
    scheduled_for=WHEN,
    local_time=WHEN.astimezone(ZoneInfo("Europe/Paris")),
    attempt=1,
    previous_results=(PreviousResult(datetime(2026, 11, 28, 8, tzinfo=UTC), "3 new mails"),),
)


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as chat:
        yield chat


def complete(server: ChatServer, **options: Any) -> AgentReply:
    """One ``complete`` call by a fresh agent on ``server``, closed afterwards."""

    async def call() -> AgentReply:
        agent = make_agent(server, **options)
        try:
            return await agent.complete(REQUEST)
        finally:
            await agent.aclose()

    return asyncio.run(call())


def make_agent(server: ChatServer, **options: Any) -> OpenAICompatibleAgent:
    settings: dict[str, Any] = {"api_key": KEY, "timeout": 5.0, "backoff_base": 0.05}
    settings.update(options)
    base_url = settings.pop("base_url", server.base_url)
    return OpenAICompatibleAgent(base_url, "gpt-test", **settings)


def fails(server: ChatServer, **options: Any) -> AgentError:
    with pytest.raises(AgentError) as err:
        complete(server, **options)
    assert_no_key(err.value)
    return err.value


def assert_no_key(exc: BaseException) -> None:
    for shown in (str(exc), repr(exc), repr(exc.args), repr(exc.__cause__), repr(exc.__context__)):
        assert KEY not in shown


# Success -----------------------------------------------------------------------------------


def test_success_returns_text_tokens_and_model(server: ChatServer) -> None:
    server.script(completion("  Two new mails since yesterday.  ", prompt_tokens=120))
    reply = complete(server, max_tokens=321, temperature=0.7)
    assert reply == AgentReply(
        text="Two new mails since yesterday.",
        model="test-model-2026",
        prompt_tokens=120,
        completion_tokens=7,
    )
    [received] = server.received
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["content-type"] == "application/json"
    assert received.body == {
        "model": "gpt-test",
        "messages": build_messages(REQUEST),
        "max_tokens": 321,
        "temperature": 0.7,
    }


def test_a_cookie_the_provider_sets_is_never_sent_back(server: ChatServer) -> None:
    """One session carries every user's runs: a cookie the provider (or a proxy before it)
    sets while answering one user's run must not go out with the next run, another user's."""
    cookie = (("Set-Cookie", "affinity=user-ada; Path=/"),)
    server.script(Reply(200, completion("first").body, headers=cookie), completion("second"))

    async def two_calls() -> list[str]:
        # By name: a cookie jar (aiohttp's was one) keeps no cookie of a host given as an IP.
        agent = make_agent(server, base_url=server.base_url.replace("127.0.0.1", "localhost"))
        try:
            first = await agent.complete(REQUEST)
            second = await agent.complete(REQUEST)
            return [first.text, second.text]
        finally:
            await agent.aclose()

    assert asyncio.run(two_calls()) == ["first", "second"]
    assert [r.headers.get("cookie") for r in server.received] == [None, None]


@pytest.mark.parametrize(
    ("suffix", "path"), [("", "/chat/completions"), ("/v1/", "/v1/chat/completions")]
)
def test_base_url_is_used_as_given(server: ChatServer, suffix: str, path: str) -> None:
    server.script(completion("ok"))
    complete(server, base_url=server.root_url + suffix, api_key=None)
    [received] = server.received
    assert received.path == path
    assert "authorization" not in received.headers


def test_model_falls_back_to_the_requested_one_and_usage_is_optional(server: ChatServer) -> None:
    body = b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}'
    server.script(Reply(200, body))
    assert complete(server) == AgentReply("hi", "gpt-test", None, None)


# Retries -----------------------------------------------------------------------------------


def test_429_honours_retry_after_seconds(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(rate_limited("1"), completion("done"))
    caplog.set_level(logging.WARNING, logger="personal_assistant.agents.openai_compat")
    assert complete(server).text == "done"
    first, second = server.received
    assert second.at - first.at >= 1.0
    assert second.body == first.body
    [line] = [r.getMessage() for r in caplog.records if "agent_retry" in r.getMessage()]
    assert line.startswith("event=agent_retry status=429 wait=1.00 attempt=1 max_attempts=3")
    assert "run_id=11" in line and KEY not in caplog.text


def test_429_honours_retry_after_http_date(server: ChatServer) -> None:
    server.script(rate_limited(http_date(3)), completion("done"))
    assert complete(server).text == "done"
    first, second = server.received
    assert second.at - first.at >= 0.9  # 3 s ahead at one-second resolution, less set-up


def test_500_then_success_backs_off(server: ChatServer, caplog: pytest.LogCaptureFixture) -> None:
    server.script(error(502, "bad gateway"), error(503, "overloaded"), completion("done"))
    caplog.set_level(logging.WARNING, logger="personal_assistant.agents.openai_compat")
    started = time.monotonic()
    assert complete(server, backoff_base=0.1).text == "done"
    assert len(server.received) == 3
    assert time.monotonic() - started >= 0.075 + 0.15  # base 0.1 then 0.2, jitter at most 25 %
    statuses = [r.getMessage().split()[1] for r in caplog.records]
    assert statuses == ["status=502", "status=503"]


def test_500_forever_gives_up_after_max_attempts(server: ChatServer) -> None:
    server.script(*[error(500, "The server had an error while processing your request.")] * 3)
    exc = fails(server, max_attempts=3)
    assert not exc.permanent
    assert exc.message == (
        "the provider answered HTTP 500 on all 3 attempts: "
        "The server had an error while processing your request."
    )
    assert len(server.received) == 3


def test_retry_after_beyond_the_budget_stops_at_once(server: ChatServer) -> None:
    server.script(rate_limited("120"))
    started = time.monotonic()
    exc = fails(server, budget=3.0)
    assert time.monotonic() - started < 2
    assert not exc.permanent and len(server.received) == 1
    assert "HTTP 429 and asked to come back in 120 s (at 20" in exc.message
    assert "would exceed the 3 s left for this call: Rate limit reached" in exc.message


def test_one_attempt_means_no_retry(server: ChatServer) -> None:
    server.script(rate_limited("0"))
    exc = fails(server, max_attempts=1)
    assert exc.message.startswith("the provider answered HTTP 429 on all 1 attempts and asked")
    assert len(server.received) == 1


# Failures ----------------------------------------------------------------------------------


def test_slow_answer_is_a_transient_timeout(server: ChatServer) -> None:
    server.script(completion("too late", delay=10))
    started = time.monotonic()
    exc = fails(server, timeout=0.5)
    assert time.monotonic() - started < 3
    assert not exc.permanent
    assert exc.message == "the agent did not answer within 0.5 s"
    assert len(server.received) == 1  # a timeout is not retried within the call


def test_budget_caps_the_attempt_timeout(server: ChatServer) -> None:
    server.script(error(500, "boom"), completion("too late", delay=10))
    exc = fails(server, timeout=5.0, budget=0.8, backoff_base=0.2)
    assert exc.message.startswith("the agent did not answer within 0.")
    assert len(server.received) == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            Reply(200, b"<html>oops</html>", "text/html"),
            "the agent's answer is not JSON (17 bytes)",
        ),
        (Reply(200, b'{"id": "x", "choices": []}'), "the agent's answer has no choices"),
        (
            Reply(200, b'{"error": {"message": "model is loading"}}'),
            "the agent's answer has no choices: model is loading",
        ),
        (
            Reply(200, b'{"choices": [{"message": {"content": " "}, "finish_reason": "length"}]}'),
            "the agent returned an empty answer (finish_reason=length)",
        ),
        (Reply(200, b'{"choices": [{"message": {"content": null}}]}'), "empty answer"),
    ],
)
def test_malformed_answers_are_transient_errors(
    server: ChatServer, reply: Reply, message: str
) -> None:
    server.script(reply)
    exc = fails(server)
    assert message in exc.message and not exc.permanent
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            error(400, "  This model's maximum context length is 8192 tokens.\n  "),
            "(HTTP 400): This model's maximum context length is 8192 tokens.",
        ),
        (  # never followed: the key would go wherever the redirect says
            Reply(307, b"", headers=(("Location", "http://elsewhere.example/v1"),)),
            "(HTTP 307): redirected to http://elsewhere.example/v1, check AGENT_BASE_URL",
        ),
    ],
    ids=["400", "redirect"],
)
def test_a_rejected_request_fails_at_once_with_the_reason(
    server: ChatServer, reply: Reply, message: str
) -> None:
    server.script(reply)
    exc = fails(server)
    assert exc.permanent
    assert exc.message == f"the provider rejected the request {message}"
    assert len(server.received) == 1


def test_401_is_permanent_and_never_shows_the_key(server: ChatServer) -> None:
    server.script(error(401, f"Incorrect API key provided: {KEY}."))
    exc = fails(server)
    assert exc.permanent
    assert (
        exc.message
        == "the provider rejected the request (HTTP 401): Incorrect API key provided: ***."
    )


def test_plain_text_error_bodies_are_trimmed(server: ChatServer) -> None:
    server.script(Reply(404, b"404 page not found " * 40, "text/plain"))
    exc = fails(server)
    assert exc.permanent and exc.message.startswith("the provider rejected the request (HTTP 404)")
    assert exc.message.endswith("…") and len(exc.message) < 400


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def call() -> None:
        agent = OpenAICompatibleAgent(f"http://127.0.0.1:{port}/v1", "m", api_key=KEY)
        try:
            await agent.complete(REQUEST)
        finally:
            await agent.aclose()

    with pytest.raises(AgentError) as err:
        asyncio.run(call())
    assert (
        err.value.message
        == f"cannot reach the agent at http://127.0.0.1:{port}/v1: ConnectionRefusedError"
    )
    assert not err.value.permanent
    assert_no_key(err.value)


def test_an_answer_declared_too_long_is_not_read(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_http, "ANSWER_LIMIT", 1_000)
    server.script(completion("x" * 2_000))
    exc = fails(server, max_attempts=1)
    assert exc.message == "the agent's answer is longer than 1,000 bytes"
    assert not exc.permanent


async def _raw_server(head: bytes, body: bytes) -> tuple[asyncio.Server, str]:
    """A server that sends ``head`` and ``body`` to every connection and closes it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + body)
        await writer.drain()
        writer.close()

    raw = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    return raw, f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        # No Content-Length: the body ends when the connection closes.
        (b"", b'{"choices": [{"message": {"content": "' + b"x" * 5_000 + b'"}}]}'),
        # 8 MB of zeros in 8 KB of gzip: the limit counts what decompression gives.
        (b"Content-Encoding: gzip\r\n", gzip.compress(b"0" * 8_000_000)),
    ],
    ids=["undeclared", "gzip-bomb"],
)
def test_an_answer_growing_past_the_limit_is_cut_off(
    monkeypatch: pytest.MonkeyPatch, encoding: bytes, body: bytes
) -> None:
    monkeypatch.setattr(chat_http, "ANSWER_LIMIT", 4_096)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + encoding
    head += b"Connection: close\r\n\r\n"

    async def call() -> None:
        raw, base_url = await _raw_server(head, body)
        agent = OpenAICompatibleAgent(base_url, "m", api_key=KEY, max_attempts=1)
        try:
            await agent.complete(REQUEST)
        finally:
            await agent.aclose()
            raw.close()
            await raw.wait_closed()

    with pytest.raises(AgentError) as err:
        asyncio.run(call())
    assert err.value.message == "the agent's answer is longer than 4,096 bytes"


def test_an_agent_keeps_to_the_event_loop_it_first_ran_on(server: ChatServer) -> None:
    """Its pooled connections belong to the loop of its first call until it is closed there;
    closed, it may start again on another loop."""
    server.script(completion("first"), completion("second"))
    agent = make_agent(server)
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(agent.complete(REQUEST)).text == "first"
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(agent.complete(REQUEST))
        first.run_until_complete(agent.aclose())
    finally:
        first.close()

    async def again() -> str:
        try:
            return (await agent.complete(REQUEST)).text
        finally:
            await agent.aclose()

    assert asyncio.run(again()) == "second"
    assert len(server.received) == 2


def _only_proxy_variables(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_the_environments_proxy_is_used_with_its_credentials(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = server.root_url.replace("http://", "http://squid:pass%20word@")
    _only_proxy_variables(monkeypatch, HTTP_PROXY=proxy)
    server.script(completion("Through the proxy."))
    reply = complete(server, base_url="http://model.invalid/v1")
    assert reply.text == "Through the proxy."
    [received] = server.received
    assert received.path == "http://model.invalid/v1/chat/completions"  # absolute: a proxy's
    assert (
        received.headers["proxy-authorization"] == "Basic c3F1aWQ6cGFzcyB3b3Jk"
    )  # squid:pass word


def test_no_proxy_names_the_hosts_reached_directly(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_proxy_variables(monkeypatch, HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1")
    server.script(completion("Direct."))
    assert complete(server).text == "Direct."
    assert [r.path for r in server.received] == ["/v1/chat/completions"]


@pytest.mark.parametrize(
    ("variable", "proxy"),
    [
        ("proxy.corp:3128", chat_http.Proxy("http://proxy.corp:3128", {})),
        (
            "http://u%40corp:p%3Aw@[::1]:8080",
            chat_http.Proxy("http://[::1]:8080", {"Proxy-Authorization": "Basic dUBjb3JwOnA6dw=="}),
        ),
    ],
)
def test_a_proxy_variable_is_read_as_curl_reads_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, proxy: chat_http.Proxy
) -> None:
    _only_proxy_variables(monkeypatch, HTTPS_PROXY=variable)
    assert chat_http.env_proxy("https://api.example/v1/chat/completions") == proxy
    assert chat_http.env_proxy("http://api.example/v1/chat/completions") is None


def test_repr_never_shows_the_key() -> None:
    async def shown() -> tuple[str, str]:
        agent = OpenAICompatibleAgent("https://u:pw@api.example/v1", "gpt-x", api_key=KEY)
        try:
            return repr(agent), repr(vars(agent))
        finally:
            await agent.aclose()

    agent, state = asyncio.run(shown())
    assert agent == (
        "OpenAICompatibleAgent(url='https://u:****@api.example/v1/chat/completions', model='gpt-x')"
    )
    assert KEY not in state and "SecretStr('**********')" in state


# Through the worker's path -----------------------------------------------------------------


def test_executor_stores_the_servers_answer(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AGENT": "openai",
        "AGENT_BASE_URL": server.base_url,
        "AGENT_MODEL": "llama3.2",
        "AGENT_API_KEY": KEY,
        "AGENT_MAX_TOKENS": "99",
        "AGENT_TEMPERATURE": "0",
        "AGENT_MAX_ATTEMPTS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    server.script(rate_limited("0"), completion("All quiet.", model="llama3.2:3b"))
    server.script(error(500, "down"), error(500, "still down"))

    async def run() -> tuple[Outcome, Outcome]:
        agent = build_agent(settings)
        try:
            executor = TaskExecutor(agent, timeout=10)
            return await executor.execute(REQUEST), await executor.execute(REQUEST)
        finally:
            await agent.aclose()

    ok, failed = asyncio.run(run())
    assert ok.ok and ok.agent_name == "openai"
    assert ok.reply == AgentReply("All quiet.", "llama3.2:3b", 42, 7)
    assert not failed.ok and not failed.permanent
    assert failed.error == "the provider answered HTTP 500 on all 2 attempts: still down"
    assert [r.body["model"] for r in server.received] == ["llama3.2"] * 4
    assert {r.body["max_tokens"] for r in server.received} == {99}
    assert {r.body["temperature"] for r in server.received} == {0.0}


# Retry-After parsing (pure) ----------------------------------------------------------------

NOW = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Sun, 29 Nov 2026 08:00:30 GMT", 30.0),
        ("Sun, 29 Nov 2026 07:59:00 GMT", 0.0),
        ("Sun, 29 Nov 2026 08:01:00 -0000", 60.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, NOW) == seconds
