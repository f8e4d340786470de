"""The agent port: what a run sends and what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PreviousResult:
    scheduled_for: datetime
    result: str


@dataclass(frozen=True)
class AgentRequest:
    """Everything an agent may use to answer for one run."""

    task_id: int
    run_id: int
    title: str
    instruction: str
    task_type: str
    ai_context: dict[str, Any]
    owner_name: str
    timezone: str
    scheduled_for: datetime  # aware UTC
    local_time: datetime  # scheduled_for in the owner's zone
    attempt: int
    previous_results: tuple[PreviousResult, ...] = field(default_factory=tuple)
    user_id: int = 0  # the task's owner, for per-user rate limits (0: unknown)


@dataclass(frozen=True)
class AgentReply:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Agent(Protocol):
    """Answers one request. Raises :class:`~personal_assistant.errors.AgentError` on failure."""

    @property
    def name(self) -> str: ...

    async def complete(self, request: AgentRequest) -> AgentReply: ...

    async def aclose(self) -> None: ...
