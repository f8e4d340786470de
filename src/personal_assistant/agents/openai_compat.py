"""An agent for any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp
server, LiteLLM).

One :meth:`OpenAICompatibleAgent.complete` call may make several HTTP attempts. HTTP 429 and 5xx
are retried within the call, after the provider's ``Retry-After`` (seconds or an HTTP-date) or
else an exponential backoff with jitter; at most ``max_attempts`` attempts, and never sleeping
past the call's time ``budget``. Any other 4xx fails at once with a permanent
:class:`~personal_assistant.errors.AgentError` carrying the provider's message. A timeout, an
unreachable server, a malformed body or an empty answer is a transient error, never an empty
success. The API key is only ever sent in the ``Authorization`` header: it is kept as a
``SecretStr`` and scrubbed from every message the provider sends back.

``before_retry``, if given, is awaited before each retry with the request and the call's
deadline (``time.monotonic()``): the rate limiter uses it to count every HTTP attempt, not
only the first (:mod:`personal_assistant.agents.ratelimit`).

:meth:`OpenAICompatibleAgent.call_tool` makes the model call one function tool and returns its
arguments (reading a task said in plain English, :mod:`personal_assistant.agents.task_reader`),
under the same retry rules.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import SecretStr

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.agents.chat_http import ChatTransport, InvalidHeader
from personal_assistant.agents.http_wire import Answer
from personal_assistant.agents.prompt import build_messages
from personal_assistant.core.backoff import compute_backoff
from personal_assistant.errors import AgentError
from personal_assistant.redaction import mask_url

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 300  # characters of a provider's error message kept in ours
ARGUMENTS_LIMIT = 20_000  # characters of a tool call's arguments read, at most

RetryHook = Callable[[AgentRequest, float], Awaitable[None]]


class OpenAICompatibleAgent:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: SecretStr | str | None = None,
        timeout: float = 60.0,
        budget: float | None = None,
        max_tokens: int = 800,
        temperature: float = 0.3,
        max_attempts: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_connections: int = 100,
        before_retry: RetryHook | None = None,
    ) -> None:
        """``timeout`` bounds each HTTP attempt; ``budget`` (default ``timeout * max_attempts``)
        bounds the whole call, retries and their waits included."""
        if max_attempts < 1:
            raise ValueError("max_attempts starts at 1")
        self._base_url = base_url.rstrip("/")
        self._url = self._base_url + "/chat/completions"
        self._model = model
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._api_key = SecretStr(key) if key else None
        self._timeout = timeout
        self._budget = budget if budget is not None else timeout * max_attempts
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._before_retry = before_retry
        self._transport = ChatTransport(self._url, max_connections=max_connections)

    def __repr__(self) -> str:
        return f"OpenAICompatibleAgent(url={mask_url(self._url)!r}, model={self._model!r})"

    async def complete(self, request: AgentRequest) -> AgentReply:
        deadline = time.monotonic() + self._budget
        payload = {
            "model": self._model,
            "messages": build_messages(request),
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        # Names the run and its attempt, so a provider or a proxy can tell a retried run from
        # a run whose agent was called twice (the chaos suite counts calls per attempt by it).
        run = {"X-PA-Run": f"{request.run_id}/{request.attempt}"}
        hook = None
        if self._before_retry is not None:
            hook = functools.partial(self._before_retry, request)
        response = await self._exchange(
            payload,
            deadline,
            run,
            context=f"task_id={request.task_id} run_id={request.run_id}",
            before_retry=hook,
        )
        return parse_reply(response.content, self._model)

    async def call_tool(
        self,
        messages: list[dict[str, Any]],
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        budget: float | None = None,
    ) -> dict[str, Any]:
        """The arguments the model gives to the one tool ``name`` it is made to call.

        Sent at temperature 0 with ``tool_choice`` naming the tool; retried as
        :meth:`complete` is, within ``budget`` seconds (default: the agent's). A provider that
        answers with a JSON object in ``content`` instead of a tool call is read too. No tool
        call, arguments that are not a JSON object or longer than :data:`ARGUMENTS_LIMIT`
        characters: a transient AgentError. ``before_retry`` is not called (no run)."""
        deadline = time.monotonic() + (self._budget if budget is None else budget)
        function = {"name": name, "description": description, "parameters": parameters}
        payload = {
            "model": self._model,
            "messages": messages,
            "max_tokens": self._max_tokens,
            "temperature": 0,
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": name}},
        }
        response = await self._exchange(payload, deadline, {}, context=f"tool={name}")
        return parse_tool_arguments(response.content)

    async def _exchange(
        self,
        payload: dict[str, Any],
        deadline: float,
        headers: dict[str, str],
        *,
        context: str,
        before_retry: Callable[[float], Awaitable[None]] | None = None,
    ) -> Answer:
        """The first successful response to ``payload``, after the retries the rules allow.

        ``context`` names the call in the retry log line; ``before_retry`` is awaited with
        the deadline before each retry."""
        attempt = 1
        while True:
            response = await self._post(payload, deadline, headers)
            if response.is_success:
                return response
            status = response.status
            wait, advised = self._retry_wait(response, attempt, deadline)
            log.warning(
                "event=agent_retry status=%d wait=%.2f attempt=%d max_attempts=%d "
                "retry_after=%s %s model=%s",
                status,
                wait,
                attempt,
                self._max_attempts,
                advised is not None,
                context,
                self._model,
            )
            await asyncio.sleep(wait)
            if before_retry is not None:
                await before_retry(deadline)
            attempt += 1

    def _retry_wait(
        self, response: Answer, attempt: int, deadline: float
    ) -> tuple[float, float | None]:
        """How long to wait before retrying after ``response`` failed (and the provider's
        advice, if any); raises the AgentError to give up with instead."""
        status = response.status
        message = self._provider_message(response)
        if status != 429 and status < 500:
            raise AgentError(
                f"the provider rejected the request (HTTP {status}): {message}", permanent=True
            )
        now = datetime.now(UTC)
        advised = retry_after_seconds(response.headers.get("Retry-After"), now)
        if attempt >= self._max_attempts:
            raise AgentError(
                f"the provider answered HTTP {status} on all {attempt} attempts"
                f"{_come_back(advised, now)}: {message}"
            )
        wait = advised
        if wait is None:
            wait = compute_backoff(attempt, base=self._backoff_base, max_delay=self._backoff_max)
        remaining = deadline - time.monotonic()
        if wait >= remaining:
            raise AgentError(
                f"the provider answered HTTP {status}{_come_back(advised, now)}, and "
                f"waiting {_secs(wait)} s would exceed the {_secs(remaining)} s left for "
                f"this call: {message}"
            )
        return wait, advised

    async def _post(
        self, payload: dict[str, Any], deadline: float, headers: dict[str, str]
    ) -> Answer:
        limit = max(0.01, min(self._timeout, deadline - time.monotonic()))
        headers = dict(headers)
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        try:
            return await self._transport.post(payload, headers, limit)
        except TimeoutError:
            raise AgentError(f"the agent did not answer within {_secs(limit)} s") from None
        except InvalidHeader as exc:
            raise AgentError(str(exc), permanent=True) from None
        except OSError as exc:  # refused, reset, closed mid-answer, TLS, not HTTP
            raise AgentError(
                f"cannot reach the agent at {mask_url(self._base_url)}: {type(exc).__name__}"
            ) from None

    def _provider_message(self, response: Answer) -> str:
        text = provider_message(response.content)
        if response.is_redirect:
            text = f"redirected to {response.headers.get('Location')}, check AGENT_BASE_URL"
        if self._api_key is not None:
            text = text.replace(self._api_key.get_secret_value(), "***")
        return text

    async def aclose(self) -> None:
        await self._transport.aclose()


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date), >= 0."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def provider_message(content: bytes) -> str:
    """The provider's own error message (``error.message`` or ``error``), else the body, trimmed."""
    try:
        body: Any = json.loads(content)
    except ValueError:
        body = None
    found = body.get("error") if isinstance(body, dict) else None
    if isinstance(found, dict):
        found = found.get("message")
    if found is None and isinstance(body, dict):
        found = body.get("message") or body.get("detail")
    text = found if isinstance(found, str) else content.decode("utf-8", "replace")
    text = " ".join(text.split())
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return text or "(no message)"


def parse_reply(content: bytes, requested_model: str) -> AgentReply:
    """The reply in a chat-completions body; raises a transient AgentError if there is none."""
    body, choice = _first_choice(content)
    message = choice.get("message")
    text = _text(message.get("content") if isinstance(message, dict) else None)
    if not text:
        reason = choice.get("finish_reason")
        hint = f" (finish_reason={reason})" if isinstance(reason, str) else ""
        raise AgentError(f"the agent returned an empty answer{hint}")
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    model = body.get("model")
    return AgentReply(
        text=text,
        model=model if isinstance(model, str) and model else requested_model,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


def _first_choice(content: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """A chat-completions body and its first choice; a transient AgentError without one."""
    try:
        body: Any = json.loads(content)
    except (ValueError, RecursionError):
        raise AgentError(f"the agent's answer is not JSON ({len(content)} bytes)") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        why = f": {provider_message(content)}" if isinstance(body, dict) and "error" in body else ""
        raise AgentError(f"the agent's answer has no choices{why}")
    return body, choices[0]


def parse_tool_arguments(content: bytes) -> dict[str, Any]:
    """The arguments of the first tool call in a chat-completions body, as a JSON object.

    ``arguments`` may be a JSON string (OpenAI) or an object (some local servers); a reply
    with no tool call but a JSON object as its ``content`` (a ```json fence allowed) is read
    the same way. Anything else raises a transient AgentError saying what was wrong."""
    _, choice = _first_choice(content)
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    arguments = _first_call_arguments(message.get("tool_calls"))
    if arguments is None:
        arguments = _fenced(_text(message.get("content")))
        if not arguments:
            reason = choice.get("finish_reason")
            hint = f" (finish_reason={reason})" if isinstance(reason, str) else ""
            raise AgentError(f"the agent's answer has no tool call{hint}")
    return _arguments_object(arguments)


def _first_call_arguments(calls: object) -> object | None:
    """``tool_calls[0].function.arguments``, or None when there is no such call."""
    if not isinstance(calls, list) or not calls or not isinstance(calls[0], dict):
        return None
    function = calls[0].get("function")
    return function.get("arguments") if isinstance(function, dict) else None


def _fenced(text: str) -> str:
    """``text`` without a Markdown code fence around it (```json ... ```)."""
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3]
        if text.startswith("json"):
            text = text[4:]
    return text.strip()


def _arguments_object(arguments: object) -> dict[str, Any]:
    if isinstance(arguments, str):
        if len(arguments) > ARGUMENTS_LIMIT:
            raise AgentError(
                f"the tool call's arguments are {len(arguments)} characters long; "
                f"at most {ARGUMENTS_LIMIT} are read"
            )
        try:
            arguments = json.loads(arguments)
        except (ValueError, RecursionError):
            raise AgentError("the tool call's arguments are not JSON") from None
    elif isinstance(arguments, dict):
        try:
            size = len(json.dumps(arguments))
        except (TypeError, ValueError, RecursionError):
            raise AgentError("the tool call's arguments are not JSON") from None
        if size > ARGUMENTS_LIMIT:
            raise AgentError(
                f"the tool call's arguments are {size} characters long; "
                f"at most {ARGUMENTS_LIMIT} are read"
            )
    if not isinstance(arguments, dict):
        raise AgentError(
            f"the tool call's arguments are not a JSON object ({type(arguments).__name__})"
        )
    return arguments


def _text(content: object) -> str:
    """A message's content: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        content = "".join(p for p in parts if isinstance(p, str))
    return content.strip() if isinstance(content, str) else ""


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _come_back(advised: float | None, now: datetime) -> str:
    if advised is None:
        return ""
    at = now + timedelta(seconds=advised)
    return f" and asked to come back in {_secs(advised)} s (at {at:%Y-%m-%d %H:%M:%S} UTC)"


def _secs(seconds: float) -> str:
    return f"{max(0.0, round(seconds, 1)):g}"
