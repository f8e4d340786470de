"""What the API takes and answers. The answers have the shapes of the CLI's ``--json``
(:mod:`personal_assistant.app.views`); what it takes is checked by the façade, whose errors name
the field, and unknown fields are refused."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    #: Unknown fields are refused, and types are strict: a JSON ``true`` is no id, ``1`` no title.
    model_config = ConfigDict(extra="forbid", strict=True)


#: A wall-clock time in the user's zone, ``HH:MM`` (quiet hours, the digest).
ClockTime = Annotated[str, Field(pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$", examples=["22:30"])]


#: A URL's characters: no space and no control character (a database stores no NUL).
URL_CHARACTERS = r"^[^\s\x00-\x1f\x7f]+$"


def wall_time(value: str) -> time:
    """A :data:`ClockTime` (already matched) as a naive time."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class TaskIn(_In):
    title: str = Field(max_length=10_000)
    instruction: str = Field(default="", max_length=100_000)
    schedule: dict[str, Any] = Field(
        description="A schedule object, e.g. {'kind': 'daily', 'times': ['09:00']}; its "
        "`timezone` defaults to the user's."
    )
    task_type: str = "reminder"
    ai_context: dict[str, Any] | None = None
    notification_channels: list[str] | None = None
    catch_up: str = "once"
    max_retries: int | None = None


class TaskEdit(_In):
    """Only the fields given change; a new schedule recomputes ``next_run_at``."""

    title: str | None = Field(default=None, max_length=10_000)
    instruction: str | None = Field(default=None, max_length=100_000)
    schedule: dict[str, Any] | None = None
    task_type: str | None = None
    ai_context: dict[str, Any] | None = None
    notification_channels: list[str] | None = None
    catch_up: str | None = None
    max_retries: int | None = None


class PreviewIn(_In):
    schedule: dict[str, Any]
    count: int = Field(default=5, ge=1, le=100)


class ProposeIn(_In):
    text: str = Field(
        max_length=10_000,
        description="The task in plain English: 'remind me every weekday at 8:30 to stretch'.",
    )


class ReadIn(_In):
    ids: list[int] = Field(max_length=10_000)


class UserIn(_In):
    display_name: str = Field(max_length=10_000)
    email: str | None = None
    phone: str | None = None
    timezone: str = "UTC"
    is_admin: bool = False


class UserEdit(_In):
    """The fields to change; ``email`` or ``phone`` null clears it."""

    display_name: str | None = Field(default=None, max_length=10_000)
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    is_admin: bool | None = None


class Removed(BaseModel):
    """A removed user and how much was removed with them."""

    user_id: int
    display_name: str
    tasks: int
    runs: int
    notifications: int
    channels: int
    calendars: int
    keys: int


class Digest(BaseModel):
    at: str
    channel: str | None
    next_at: str | None


class UserOut(BaseModel):
    id: int
    display_name: str
    email: str | None
    phone: str | None
    timezone: str
    is_admin: bool
    digest: Digest | None
    created_at: str | None


class TaskOut(BaseModel):
    id: int
    user_id: int
    title: str
    instruction: str
    task_type: str
    status: str
    status_reason: str | None
    schedule: dict[str, Any]
    schedule_description: str
    timezone: str
    next_run_at: str | None
    last_run_at: str | None
    notification_channels: list[str]
    catch_up: str
    max_retries: int
    consecutive_failures: int
    ai_context: dict[str, Any] | None
    created_at: str | None
    updated_at: str | None


class RunOut(BaseModel):
    id: int
    task_id: int
    scheduled_for: str | None
    state: str
    attempt: int
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    result: str | None
    error: str | None
    agent_name: str | None
    agent_model: str | None


class NotificationOut(BaseModel):
    id: int
    run_id: int | None
    task_id: int | None
    user_id: int
    channel: str
    status: str
    title: str
    body: str
    attempts: int
    last_error: str | None
    created_at: str | None
    delivered_at: str | None
    read_at: str | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    #: Pass as ``cursor`` for the next page; None: this is the last.
    next_cursor: str | None


class PreviewOut(BaseModel):
    schedule: dict[str, Any]
    description: str
    timezone: str
    firings: list[str]


class Proposal(BaseModel):
    """A task read from a request: what ``POST /v1/tasks`` would be given, in words too."""

    title: str
    instruction: str
    task_type: str
    schedule: dict[str, Any]
    description: str
    timezone: str
    #: Where each part came from: ``text[start:end]``, part ``when``, ``zone``, ``ends``, ``title``.
    spans: list[dict[str, Any]]
    #: Who read it: ``offline`` (the parser), ``offline+model`` (both, alike) or ``model``.
    source: str = "offline"


class ProposalOut(BaseModel):
    proposal: Proposal
    #: The next three firings, ISO 8601 in UTC.
    next_firings: list[str]


class FieldError(BaseModel):
    field: str | None
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem: every error answer (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    #: The field at fault, when there is one (``schedule.weekdays``, ``Authorization``).
    field: str | None = None
    #: Every invalid field of a request that failed validation (422).
    errors: list[FieldError] | None = None
    #: The closest reading of a request refused as unsure (``/v1/proposals``), if any.
    closest: Proposal | None = None
    #: A second, different reading of that request (the model's, when one is configured).
    other: Proposal | None = None


class Count(BaseModel):
    count: int


class Status(BaseModel):
    healthy: bool
    problems: list[str]
