"""Choose the agent from settings."""

from __future__ import annotations

from personal_assistant.agents.base import Agent
from personal_assistant.agents.offline import OfflineAgent
from personal_assistant.agents.openai_compat import OpenAICompatibleAgent
from personal_assistant.config import Settings


def build_agent(settings: Settings) -> Agent:
    if settings.agent == "openai":
        assert settings.agent_base_url is not None  # checked by Settings
        return OpenAICompatibleAgent(
            settings.agent_base_url,
            settings.agent_model,
            api_key=settings.agent_api_key,
            timeout=settings.agent_timeout_seconds,
            budget=settings.run_timeout_seconds,
            max_tokens=settings.agent_max_tokens,
            temperature=settings.agent_temperature,
            max_attempts=settings.agent_max_attempts,
            max_connections=settings.max_in_flight,
        )
    return OfflineAgent()
