"""The built-in offline agent: deterministic, instant, and useful without any model.

A reminder says what to remember and when; a periodic or automated task gets a short report
that summarises the task and its previous results. A calendar reminder is made from its event
(``ai_context["calendar"]``: summary, when, where, notes), quoted as the event's text; the
subscription's instruction, which only says to remind, is not repeated. For drills and tests,
an ``ai_context`` entry ``{"simulate_failure": "reason"}`` makes it fail
(``"simulate_failure_permanent": true`` makes the failure permanent);
``{"simulate_failure_attempts": N}`` fails only the first N attempts of each run;
``{"simulate_delay_seconds": S}`` answers after S seconds, like a slow model (still bounded by
``RUN_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from personal_assistant.agents.base import AgentReply, AgentRequest
from personal_assistant.errors import AgentError

MODEL = "offline-1"
NOTES_LIMIT = 500  # characters of a calendar event's notes quoted in its reminder


@functools.lru_cache(maxsize=1024)
def _stamp(local_time: datetime, timezone: str) -> str:
    """Made once per instant and zone: a burst's runs share a few (``strftime`` with day and
    month names took 2.7 us of ``compose``'s 3.6 per answer)."""
    return local_time.strftime("%A %d %B %Y, %H:%M") + f" ({timezone})"


def compose(request: AgentRequest) -> str:
    """The offline agent's answer (pure)."""
    when = _stamp(request.local_time, request.timezone)
    instruction = request.instruction.strip()
    event = _calendar_event(request.ai_context)
    if request.task_type == "reminder" and event is not None:
        return f"{_event_reminder(request.owner_name, event)}\nIt is {when}."
    if request.task_type == "reminder":
        text = f"Reminder for {request.owner_name}: {request.title}."
        if instruction:
            text += f" {instruction}"
        return f"{text}\nIt is {when}."
    lines = [f"{request.title}: report for {request.owner_name}, {when}."]
    if instruction:
        lines.append(f"Instruction: {instruction}")
    if request.previous_results:
        last = request.previous_results[0]
        lines.append(
            f"This is run {len(request.previous_results) + 1} of those on record; "
            f"the last one ({last.scheduled_for:%Y-%m-%d %H:%M} UTC) said: "
            f"{_first_line(last.result)}"
        )
    else:
        lines.append("This is the first run of this task.")
    keys = sorted(k for k in request.ai_context if not k.startswith("simulate_"))
    if keys:
        lines.append("Context: " + ", ".join(f"{k}={request.ai_context[k]!r}" for k in keys))
    return "\n".join(lines)


def _calendar_event(context: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The calendar event a reminder was made from, if its context holds one."""
    event = context.get("calendar")
    if isinstance(event, Mapping) and isinstance(event.get("summary"), str):
        return event
    return None


def _event_reminder(owner: str, event: Mapping[str, Any]) -> str:
    """``Reminder for Ada: Dentist, Tuesday 1 December 2026, 10:00 (Europe/Paris). Where: ...``
    then the event's notes."""
    text = f"Reminder for {owner}: {_text(event, 'summary')}"
    when = _text(event, "when")
    text += f", {when}." if when else "."
    where = _text(event, "location")
    if where:
        text += f" Where: {where}."
    notes = _text(event, "description")
    if notes:
        text += "\n" + (notes if len(notes) <= NOTES_LIMIT else notes[: NOTES_LIMIT - 1] + "…")
    return text


def _text(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    return value.strip() if isinstance(value, str) else ""


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class OfflineAgent:
    name = "offline"

    async def complete(self, request: AgentRequest) -> AgentReply:
        ctx = request.ai_context
        delay = ctx.get("simulate_delay_seconds")
        if isinstance(delay, int | float) and delay > 0:
            await asyncio.sleep(float(delay))
        reason = ctx.get("simulate_failure")
        if reason:
            limit = ctx.get("simulate_failure_attempts")
            if not isinstance(limit, int) or request.attempt <= limit:
                raise AgentError(
                    f"simulated failure: {reason}",
                    permanent=bool(ctx.get("simulate_failure_permanent", False)),
                )
        text = compose(request)
        return AgentReply(
            text=text,
            model=MODEL,
            prompt_tokens=len(request.instruction.split()) + len(request.title.split()),
            completion_tokens=len(text.split()),
        )

    async def aclose(self) -> None:
        return None
