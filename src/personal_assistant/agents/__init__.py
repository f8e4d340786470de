"""Agents: the small protocol a run calls, the offline agent and an OpenAI-compatible one.

The package itself holds only the protocol's names: the agents and their factory
(:mod:`~personal_assistant.agents.factory`) bring an HTTP client and a Redis client with them,
which a command that never calls a model (``pa task list``) should not pay for at start-up.
"""

from personal_assistant.agents.base import Agent, AgentReply, AgentRequest, PreviousResult

__all__ = ["Agent", "AgentReply", "AgentRequest", "PreviousResult"]
