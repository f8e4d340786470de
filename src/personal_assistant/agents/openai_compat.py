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
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.agents.prompt import build_messages
from personal_assistant.core.backoff import compute_backoff
from personal_assistant.errors import AgentError
from personal_assistant.redaction import mask_url

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 300  # characters of a provider's error message kept in ours
CONNECTIONS_PER_CLIENT = 8

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
        # Many small clients instead of one large one: httpcore's pool checks every connection
        # of a client (a poll() each) whenever a request starts or ends, in time quadratic in
        # their number (encode/httpcore#1035). With 500 calls in flight, clients of 32 spent
        # 60 % of the event loop there, clients of 8 spend 10 % (py-spy, `make bench`).
        shards = max(1, math.ceil(max_connections / CONNECTIONS_PER_CLIENT))
        per_client = math.ceil(max_connections / shards)
        # One TLS context for all of them: building one costs ~50 ms of CPU.
        tls = httpx.create_ssl_context()
        self._clients = [
            httpx.AsyncClient(
                timeout=timeout, limits=httpx.Limits(max_connections=per_client), verify=tls
            )
            for _ in range(shards)
        ]
        self._next_client = itertools.cycle(self._clients)

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
        attempt = 1
        while True:
            response = await self._post(payload, deadline, run)
            if response.is_success:
                return parse_reply(response.content, self._model)
            status = response.status_code
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
                wait = compute_backoff(
                    attempt, base=self._backoff_base, max_delay=self._backoff_max
                )
            remaining = deadline - time.monotonic()
            if wait >= remaining:
                raise AgentError(
                    f"the provider answered HTTP {status}{_come_back(advised, now)}, and "
                    f"waiting {_secs(wait)} s would exceed the {_secs(remaining)} s left for "
                    f"this call: {message}"
                )
            log.warning(
                "event=agent_retry status=%d wait=%.2f attempt=%d max_attempts=%d "
                "retry_after=%s task_id=%d run_id=%d model=%s",
                status,
                wait,
                attempt,
                self._max_attempts,
                advised is not None,
                request.task_id,
                request.run_id,
                self._model,
            )
            await asyncio.sleep(wait)
            if self._before_retry is not None:
                await self._before_retry(request, deadline)
            attempt += 1

    async def _post(
        self, payload: dict[str, Any], deadline: float, headers: dict[str, str]
    ) -> httpx.Response:
        limit = max(0.01, min(self._timeout, deadline - time.monotonic()))
        headers = dict(headers)
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        try:
            async with asyncio.timeout(limit):
                return await next(self._next_client).post(
                    self._url, json=payload, headers=headers, timeout=limit
                )
        except (TimeoutError, httpx.TimeoutException):
            raise AgentError(f"the agent did not answer within {_secs(limit)} s") from None
        except httpx.HTTPError as exc:
            raise AgentError(
                f"cannot reach the agent at {mask_url(self._base_url)}: {type(exc).__name__}"
            ) from None

    def _provider_message(self, response: httpx.Response) -> str:
        text = provider_message(response.content)
        if response.is_redirect:
            text = f"redirected to {response.headers.get('Location')}, check AGENT_BASE_URL"
        if self._api_key is not None:
            text = text.replace(self._api_key.get_secret_value(), "***")
        return text

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


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
    try:
        body: Any = json.loads(content)
    except ValueError:
        raise AgentError(f"the agent's answer is not JSON ({len(content)} bytes)") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        why = f": {provider_message(content)}" if isinstance(body, dict) and "error" in body else ""
        raise AgentError(f"the agent's answer has no choices{why}")
    message = choices[0].get("message")
    text = _text(message.get("content") if isinstance(message, dict) else None)
    if not text:
        reason = choices[0].get("finish_reason")
        hint = f" (finish_reason={reason})" if isinstance(reason, str) else ""
        raise AgentError(f"the agent returned an empty answer{hint}")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    model = body.get("model")
    return AgentReply(
        text=text,
        model=model if isinstance(model, str) and model else requested_model,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


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
