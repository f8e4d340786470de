"""A language model reading a task said in plain English: :class:`ModelTaskReader`.

It asks an OpenAI-compatible endpoint to call the one function of
:mod:`~personal_assistant.core.phrase_model` and checks the answer there: the result is a
:class:`~personal_assistant.core.phrases.Proposal` with ``source="model"`` or a
:class:`~personal_assistant.core.phrases.Refusal`. It is one opinion, weighed against the
offline reading by :func:`~personal_assistant.core.phrase_model.combine`; a failed call raises
:class:`~personal_assistant.errors.AgentError`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from personal_assistant.config import Settings
from personal_assistant.core import phrase_model
from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.errors import ConfigurationError

if TYPE_CHECKING:
    from personal_assistant.agents.openai_compat import OpenAICompatibleAgent

__all__ = ["ModelTaskReader"]

MAX_BUDGET = 20.0
"""Seconds one reading may take at most, retries included: someone is waiting for it."""

MAX_TOKENS = 1200
"""Enough for the longest answer the schema allows (an instruction of 2,000 characters)."""


class ModelTaskReader:
    """Reads requests with the model behind ``agent``, each call within ``budget`` seconds."""

    def __init__(self, agent: OpenAICompatibleAgent, *, budget: float | None = None) -> None:
        self._agent = agent
        self._budget = budget

    @classmethod
    def from_settings(cls, settings: Settings, *, max_connections: int = 2) -> ModelTaskReader:
        """A reader on the configured endpoint (``AGENT_BASE_URL``, ``AGENT_MODEL``,
        ``AGENT_API_KEY``): two attempts, within min(20, twice ``AGENT_TIMEOUT``) seconds."""
        if not settings.agent_base_url:
            raise ConfigurationError("is required to read with a model", field="AGENT_BASE_URL")
        # Here, not at import: the HTTP client is for the commands that read with a model.
        from personal_assistant.agents.openai_compat import OpenAICompatibleAgent

        timeout = settings.agent_timeout_seconds
        budget = min(MAX_BUDGET, timeout * 2)
        agent = OpenAICompatibleAgent(
            settings.agent_base_url,
            settings.agent_model,
            api_key=settings.agent_api_key,
            timeout=timeout,
            budget=budget,
            max_tokens=MAX_TOKENS,
            temperature=0.0,
            max_attempts=2,
            max_connections=max_connections,
        )
        return cls(agent, budget=budget)

    def __repr__(self) -> str:
        return f"ModelTaskReader({self._agent!r})"

    async def read(self, text: str, now: datetime, tz: str) -> Proposal | Refusal:
        """The model's reading of ``text`` at ``now`` (aware) for a user in ``tz``, checked."""
        arguments = await self._agent.call_tool(
            phrase_model.messages(text, now, tz),
            name=phrase_model.TOOL_NAME,
            description=phrase_model.TOOL_DESCRIPTION,
            parameters=phrase_model.PARAMETERS,
            budget=self._budget,
        )
        return phrase_model.from_model(arguments, now, tz)

    async def aclose(self) -> None:
        await self._agent.aclose()
