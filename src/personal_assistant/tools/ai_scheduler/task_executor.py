"""``TaskExecutor``: runs one AI task through the agent and says how it went.

It never raises for an agent failure and never reports a failure as success: a timeout, an
agent error or an unexpected exception becomes an :class:`Outcome` with ``ok=False`` and the
reason.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from personal_assistant.agents.base import Agent, AgentReply, AgentRequest
from personal_assistant.errors import AgentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    run_id: int
    attempt: int
    agent_name: str
    reply: AgentReply | None = None
    error: str | None = None
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.reply is not None


class TaskExecutor:
    def __init__(self, agent: Agent, *, timeout: float) -> None:
        self.agent = agent
        self._timeout = timeout

    async def execute(self, request: AgentRequest) -> Outcome:
        try:
            reply = await asyncio.wait_for(self.agent.complete(request), timeout=self._timeout)
        except AgentError as exc:
            return Outcome(
                request.run_id,
                request.attempt,
                self.agent.name,
                error=exc.message,
                permanent=exc.permanent,
            )
        except TimeoutError:
            return Outcome(
                request.run_id,
                request.attempt,
                self.agent.name,
                error=f"the agent did not answer within {self._timeout:g} s",
            )
        except Exception as exc:
            log.exception("event=agent_crashed run_id=%s", request.run_id)
            return Outcome(
                request.run_id,
                request.attempt,
                self.agent.name,
                error=f"agent crashed: {type(exc).__name__}: {exc}",
            )
        if not reply.text.strip():
            return Outcome(
                request.run_id, request.attempt, self.agent.name, error="the agent returned no text"
            )
        return Outcome(request.run_id, request.attempt, self.agent.name, reply=reply)
