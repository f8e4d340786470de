"""An agent for any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, ...)."""

from __future__ import annotations

from typing import Any

import httpx

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.agents.prompt import build_messages
from personal_assistant.errors import AgentError


class OpenAICompatibleAgent:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_tokens: int = 800,
        temperature: float = 0.3,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._max_tokens = max_tokens
        self._temperature = temperature
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.AsyncClient(timeout=timeout, headers=headers)

    def __repr__(self) -> str:
        return f"OpenAICompatibleAgent(url={self._url!r}, model={self._model!r})"

    async def complete(self, request: AgentRequest) -> AgentReply:
        payload = {
            "model": self._model,
            "messages": build_messages(request),
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        try:
            response = await self._client.post(self._url, json=payload)
        except httpx.TimeoutException:
            raise AgentError("the agent did not answer in time") from None
        except httpx.HTTPError as exc:
            raise AgentError(f"cannot reach the agent: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise AgentError(f"the agent answered HTTP {response.status_code}")
        if response.status_code >= 400:
            raise AgentError(
                f"the agent refused the request (HTTP {response.status_code}): "
                f"{_provider_message(response)}",
                permanent=True,
            )
        return _parse(response, self._model)

    async def aclose(self) -> None:
        await self._client.aclose()


def _provider_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return str(message or response.text[:200])


def _parse(response: httpx.Response, requested_model: str) -> AgentReply:
    try:
        body: Any = response.json()
        text = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AgentError("the agent's answer is not a chat completion") from None
    if not isinstance(text, str) or not text.strip():
        raise AgentError("the agent returned an empty answer")
    usage = body.get("usage") or {}
    return AgentReply(
        text=text.strip(),
        model=str(body.get("model") or requested_model),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )
