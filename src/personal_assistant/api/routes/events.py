"""``/v1/events``: the caller's new runs, their runs' changes of state and their new
notifications, as server-sent events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.sse import EventSourceResponse

from personal_assistant.api.events import HEARTBEAT, MAX_STREAM_SECONDS, closing, encode
from personal_assistant.api.security import App, Owner
from personal_assistant.app.events import Cursor

router = APIRouter(tags=["events"])

#: How often the stream reads the database, and sends a heartbeat when idle (seconds).
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0

_FORMAT = (
    "`event: run` (data: a run, as `GET /v1/runs/{id}`) when one of the caller's runs is "
    "created or changes state; `event: notification` (data: a notification) when one is "
    "created. Each `id:` resumes the stream after it when sent back as `Last-Event-ID`; a "
    "comment line `: heartbeat` comes every 15 s of quiet."
)


@router.get(
    "/v1/events",
    response_model=None,
    responses={
        200: {
            "description": _FORMAT,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def events(
    request: Request,
    owner: Owner,
    app: App,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> EventSourceResponse:
    """The caller's events as server-sent events (`text/event-stream`), polled every second,
    until they disconnect: `event: run` (data: the run, as `GET /v1/runs/{id}`) when one of
    their runs is created or changes state, `event: notification` (data: the notification)
    when one is created. Each `id:`, sent back as `Last-Event-ID`, resumes after it; a
    `: heartbeat` comment comes after 15 s of quiet."""
    feed = await app.events.start(owner.id, Cursor.parse(last_event_id))
    server_closing = closing(request.scope)

    async def stream() -> AsyncIterator[bytes]:
        nonlocal feed
        started = quiet_since = time.monotonic()
        yield b"retry: 3000\n: connected\n\n"
        while not server_closing() and not await request.is_disconnected():
            found, feed = await app.events.poll(owner.id, feed)
            for event in found:
                yield encode(event.kind, event.data, str(event.cursor))
            now = time.monotonic()
            if found:
                quiet_since = now
            elif now - quiet_since >= HEARTBEAT_SECONDS:
                quiet_since = now
                yield HEARTBEAT
            if now - started >= MAX_STREAM_SECONDS:
                return
            await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(stream(), headers={"X-Accel-Buffering": "no"})
