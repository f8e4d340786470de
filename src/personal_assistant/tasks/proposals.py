"""Tasks said in plain English: the reading of a request for a user, and the task made of it.

:meth:`~personal_assistant.tasks.manager.AITaskManager.propose_task` reads a request in the
user's zone at the manager's ``now`` (:func:`read`) and creates nothing;
:meth:`~personal_assistant.tasks.manager.AITaskManager.create_task_from_text` creates the task
read (:func:`sure` of it), or refuses with :func:`refused`: a :class:`ValidationError` naming
``text`` that gives the reason and the closest reading, never a guess. The reading itself is
:func:`~personal_assistant.core.phrases.parse_request` (pure); :func:`view` is its JSON form
for the CLI's ``--json`` and the API, and :func:`task_fields` the arguments of ``create_task``.

With ``AGENT=openai``, :func:`read_checked` asks the configured model too and weighs the two
readings (:func:`~personal_assistant.core.phrase_model.combine`): when they differ, or only the
model read the request, the answer is a question offering both, never the model's guess.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from personal_assistant.agents.task_reader import ModelTaskReader
from personal_assistant.config import Settings
from personal_assistant.core.phrase_model import combine
from personal_assistant.core.phrases import MAX_CHARS, Proposal, Refusal, parse_request
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_text import describe
from personal_assistant.errors import AgentError, ValidationError

__all__ = [
    "asks_model",
    "describe_proposal",
    "read",
    "read_checked",
    "refused",
    "sure",
    "task_fields",
    "view",
]

log = logging.getLogger(__name__)

#: What ``create_task_from_text`` may set besides what the text says.
_OVERRIDES = frozenset(
    {
        "title",
        "description",
        "task_type",
        "ai_context",
        "notification_channels",
        "catch_up",
        "max_retries",
    }
)


def read(text: object, timezone: str, now: datetime) -> Proposal | Refusal:
    """``text`` read for a user in ``timezone`` at ``now``; anything but a string is refused."""
    if not isinstance(text, str):
        return Refusal("The request must be text.", None)
    return parse_request(text, now, timezone)


async def read_checked(
    text: object, timezone: str, now: datetime, settings: Settings
) -> Proposal | Refusal:
    """:func:`read`, and with ``AGENT=openai`` the model's reading too, weighed against it.

    A model that fails is logged (``event=proposal_model_failed``) and left out: the offline
    reading stands alone. Text refused before any reading is never sent (:func:`asks_model`)."""
    offline = read(text, timezone, now)
    if settings.agent != "openai" or not asks_model(text, offline):
        return offline
    assert isinstance(text, str)  # asks_model is false for anything else
    reader = ModelTaskReader.from_settings(settings)
    try:
        model: Proposal | Refusal | None = await reader.read(text, now, timezone)
    except AgentError as exc:
        # The reason up to the provider's own words: no key, no user text.
        log.warning(
            "event=proposal_model_failed permanent=%s reason=%s",
            exc.permanent,
            exc.message.split(": ", 1)[0],
        )
        model = None
    finally:
        await reader.aclose()
    return combine(offline, model, now)


def asks_model(text: object, offline: Proposal | Refusal) -> bool:
    """Whether a model may read ``text`` too: not when it was refused as bad input before any
    reading (not a string, empty, too long, control characters, no words, not English)."""
    if isinstance(offline, Proposal) or offline.closest is not None:
        return True
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHARS:
        return False
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        return False
    # The other refusals before reading (no words, not English) all begin so.
    return not offline.reason.startswith("The request ")


def sure(reading: Proposal | Refusal) -> Proposal:
    """The proposal; a refusal raises :func:`refused`."""
    if isinstance(reading, Refusal):
        raise refused(reading)
    return reading


def task_fields(proposal: Proposal, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``create_task`` for ``proposal``, ``overrides`` winning."""
    unknown = sorted(set(overrides or {}) - _OVERRIDES)
    if unknown:
        raise ValidationError(
            f"unknown option {unknown[0]!r}; one of {', '.join(sorted(_OVERRIDES))}",
            field=unknown[0],
        )
    fields: dict[str, Any] = {
        "title": proposal.title,
        "description": proposal.instruction,
        "task_type": proposal.task_type,
        "schedule": dict(proposal.schedule),
    }
    fields.update(overrides or {})
    return fields


def refused(refusal: Refusal) -> ValidationError:
    """The error of a refused request: its reason, and the closest reading as a question."""
    message = refusal.reason
    if refusal.closest is not None:
        message += f" Did you mean: {describe_proposal(refusal.closest)}?"
    if refusal.other is not None:
        message += f" Or: {describe_proposal(refusal.other)}?"
    return ValidationError(message, field=refusal.field)


def describe_proposal(proposal: Proposal) -> str:
    """``'Stretch' (reminder), weekly on mon, ... at 08:30 (Europe/Paris)``: one line."""
    return (
        f"{proposal.title!r} ({proposal.task_type}), {describe(parse_schedule(proposal.schedule))}"
    )


def view(proposal: Proposal) -> dict[str, Any]:
    """A proposal as JSON: what would be created, the schedule in words, and the spans read."""
    schedule = parse_schedule(proposal.schedule)
    return {
        "title": proposal.title,
        "instruction": proposal.instruction,
        "task_type": proposal.task_type,
        "schedule": dict(proposal.schedule),
        "description": describe(schedule),
        "timezone": schedule.timezone,
        "source": proposal.source,
        "spans": [{"start": s.start, "end": s.end, "part": s.part} for s in proposal.spans],
    }
