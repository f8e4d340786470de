"""``TaskExecutor``: runs one AI task through the agent and says how it went.

It never raises for an agent failure and never reports a failure as success: a timeout, an
agent error or an unexpected exception becomes an :class:`Outcome` with ``ok=False`` and the
reason. A call the rate limiter held back before the agent was asked
(:class:`~personal_assistant.agents.ratelimit.RateLimited`) is no failure: its outcome is
``deferred`` by the wait the limiter asked for, and costs the run no attempt. Nor does it hand
over what the database cannot store (:func:`storable_reply`, :func:`storable_text`): an
agent's answer is outside input, and one unstorable outcome would fail the transaction that
records its whole batch.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from personal_assistant.agents.base import Agent, AgentReply, AgentRequest
from personal_assistant.agents.ratelimit import RateLimited
from personal_assistant.agents.timeouts import Deadlines
from personal_assistant.errors import AgentError
from personal_assistant.metrics import record

log = logging.getLogger(__name__)

#: ``task_runs.agent_model`` is a ``String(200)``; token counts are PostgreSQL ``integer``s.
MODEL_MAX = 200
COUNT_MAX = 2**31 - 1
#: PostgreSQL text cannot hold NUL; UTF-8 cannot encode a lone surrogate (JSON's "\ud83d").
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` as the database can store it (pure): NULs dropped, lone surrogates replaced
    by U+FFFD (a surrogate pair decoded by ``json`` is one character, and stays)."""
    return _UNSTORABLE.sub(_storable_character, text)


def _storable_character(found: re.Match[str]) -> str:
    return "" if found.group() == "\x00" else "\ufffd"


def _storable_count(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= COUNT_MAX else None


def storable_reply(reply: AgentReply) -> AgentReply:
    """``reply`` as a run can store it (pure): its text and model name as
    :func:`storable_text` makes them, the model name cut to its column, and a token count that
    no integer column holds left out. A reply that needs none of it (nearly all) is returned
    as it is."""
    text = storable_text(reply.text)
    model = storable_text(reply.model)[:MODEL_MAX]
    prompt_tokens = _storable_count(reply.prompt_tokens)
    completion_tokens = _storable_count(reply.completion_tokens)
    if (text, model, prompt_tokens, completion_tokens) == (
        reply.text,
        reply.model,
        reply.prompt_tokens,
        reply.completion_tokens,
    ):
        return reply
    return AgentReply(text, model, prompt_tokens, completion_tokens)


@dataclass(frozen=True)
class Outcome:
    run_id: int
    attempt: int
    agent_name: str
    reply: AgentReply | None = None
    error: str | None = None
    permanent: bool = False
    #: Seconds the rate limiter asked to wait: the agent was not called (no attempt made).
    defer_seconds: float | None = None
    timed_out: bool = False
    crashed: bool = False
    #: How long the attempt took, the agent's call and its checks.
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reply is not None

    @property
    def deferred(self) -> bool:
        return self.reply is None and self.defer_seconds is not None


class TaskExecutor:
    def __init__(self, agent: Agent, *, timeout: float, model: str | None = None) -> None:
        self.agent = agent
        self._timeout = timeout
        #: The model the deployment configured, for the token metrics: a reply's own model
        #: name is outside input, no label.
        self._model = model or agent.name
        #: The attempts' timeouts, one timer per 50 ms of deadlines (a part's runs start
        #: together): an ``asyncio.timeout`` each cost the end-to-end worker about 5 % of its
        #: CPU per run.
        self._deadlines: Deadlines | None = None

    async def execute(self, request: AgentRequest) -> Outcome:
        """One attempt of ``request``'s run; counted in the metrics by :meth:`count`."""
        outcome = await self._attempt(request, time.perf_counter())
        if outcome.error is None:
            return outcome
        return replace(outcome, error=storable_text(outcome.error))

    def count(self, outcomes: Sequence[Outcome]) -> None:
        """Count the agent calls of ``outcomes`` (durations, errors, tokens), a group at once:
        one observation per run, a lock each, cost the end-to-end benchmark 8.6-11.9 % of its
        rate with metrics on (:func:`~personal_assistant.metrics.record.observe_all`)."""
        record.agent_calls((o.agent_name, o.seconds, _error_class(o)) for o in outcomes)
        replies = [o.reply for o in outcomes if o.reply is not None]
        record.tokens(
            self._model,
            sum(r.prompt_tokens or 0 for r in replies),
            sum(r.completion_tokens or 0 for r in replies),
        )

    def _deadlines_here(self) -> Deadlines:
        deadlines = self._deadlines
        if deadlines is None or not deadlines.running_here():
            deadlines = self._deadlines = Deadlines()
        return deadlines

    async def _attempt(self, request: AgentRequest, started: float) -> Outcome:
        def ended(**fields: Any) -> Outcome:
            return Outcome(
                request.run_id,
                request.attempt,
                self.agent.name,
                seconds=time.perf_counter() - started,
                **fields,
            )

        try:
            # Not asyncio.wait_for: on Python 3.11 it wraps the call in a task of its own, a
            # cost per run that shows with thousands of runs in flight.
            async with self._deadlines_here().within(self._timeout):
                reply = await self.agent.complete(request)
        except RateLimited as exc:
            return ended(
                error=exc.message,
                defer_seconds=exc.wait,
            )
        except AgentError as exc:
            return ended(
                error=exc.message,
                permanent=exc.permanent,
            )
        except TimeoutError:
            return ended(
                error=f"the agent did not answer within {self._timeout:g} s",
                timed_out=True,
            )
        except Exception as exc:
            log.exception("event=agent_crashed run_id=%s", request.run_id)
            return ended(
                error=f"agent crashed: {type(exc).__name__}: {exc}",
                crashed=True,
            )
        reply = storable_reply(reply)
        if not reply.text.strip():
            return ended(error="the agent returned no text")
        return ended(reply=reply)


def _error_class(outcome: Outcome) -> str | None:
    """The metrics' class of an outcome's error (one of ``catalogue.AGENT_ERRORS``), if any."""
    if outcome.ok:
        return None
    if outcome.deferred:
        return "rate_limited"
    if outcome.timed_out:
        return "timeout"
    if outcome.crashed:
        return "crashed"
    return "permanent" if outcome.permanent else "transient"
