"""Choose the agent from settings."""

from __future__ import annotations

from personal_assistant.agents.base import Agent
from personal_assistant.agents.offline import OfflineAgent
from personal_assistant.agents.openai_compat import OpenAICompatibleAgent
from personal_assistant.config import Settings


def build_agent(settings: Settings) -> Agent:
    if settings.agent == "openai":
        assert settings.agent_base_url is not None  # checked by Settings
        key = settings.agent_api_key.get_secret_value() if settings.agent_api_key else None
        return OpenAICompatibleAgent(
            settings.agent_base_url,
            settings.agent_model,
            api_key=key,
            timeout=settings.agent_timeout_seconds,
        )
    return OfflineAgent()
