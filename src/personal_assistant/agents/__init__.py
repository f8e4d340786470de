"""Agents: the small protocol a run calls, the offline agent and an OpenAI-compatible one."""

from personal_assistant.agents.base import Agent, AgentReply, AgentRequest, PreviousResult
from personal_assistant.agents.factory import build_agent

__all__ = ["Agent", "AgentReply", "AgentRequest", "PreviousResult", "build_agent"]
