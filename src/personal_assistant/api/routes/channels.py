"""``/v1/channels``: the caller's notification channels, added, listed, tested and removed.

A channel URL carries secrets: every answer shows it masked (``pa channel list``'s form), never
the URL given. A destination the outbound policy refuses (loopback, private, link-local, cloud
metadata, unless ``OUTBOUND_ALLOW`` allows it) is refused when added: a 422 naming ``url``.
A channel is named in paths by its name; another user's answers 404, as an unknown one.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from personal_assistant.api.idempotency import IdempotencyKey, Made, once
from personal_assistant.api.schemas import URL_CHARACTERS, _In
from personal_assistant.api.security import App, Owner
from personal_assistant.app import views
from personal_assistant.notifications.channel_store import Channel
from personal_assistant.notifications.transports.apprise_urls import validate

router = APIRouter(tags=["channels"])


class ChannelIn(_In):
    name: str = Field(max_length=100, description="A name tasks use, e.g. email or work-slack.")
    url: str = Field(
        max_length=4096,
        pattern=URL_CHARACTERS,
        description="An Apprise URL, e.g. mailtos://user:pass@host; shown masked from now on.",
    )
    daily_cap: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="At most this many notifications a day (the user's day).",
    )


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: str
    #: The URL with its secrets masked.
    url: str
    status: str
    broken_reason: str | None
    daily_cap: int | None
    created_at: str | None


class ChannelTestOut(BaseModel):
    """What a test send did; ``reactivated`` when delivered, ``permanent`` when not."""

    channel: str
    delivered: bool
    reason: str | None
    reactivated: bool | None = None
    permanent: bool | None = None


def channel_out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        url=channel.masked_url,
        status=channel.status,
        broken_reason=channel.broken_reason,
        daily_cap=channel.daily_cap,
        created_at=views.iso(channel.created_at),
    )


@router.get("/v1/channels")
async def list_channels(owner: Owner, app: App) -> list[ChannelOut]:
    """The caller's channels by name, URLs masked."""
    return [channel_out(c) for c in await app.channels.list_for(owner.id)]


@router.post("/v1/channels", status_code=status.HTTP_201_CREATED, response_model=ChannelOut)
async def add_channel(
    body: ChannelIn, owner: Owner, app: App, request: Request, key: IdempotencyKey = None
) -> Response:
    """Add a channel: the URL is checked with Apprise and against the outbound policy (422
    naming `url`); a name the caller has already is a 409."""

    async def make() -> Made:
        spec = await asyncio.to_thread(validate, body.name, body.url, body.daily_cap)
        added = await app.channels.add(owner.id, spec)
        return Made(201, channel_out(added), f"/v1/channels/{added.name}")

    return await once(app, owner.id, key, request, body, make)


@router.post("/v1/channels/{channel}/test")
async def test_channel(channel: str, owner: Owner, app: App) -> ChannelTestOut:
    """Send a test message now (200 whatever the outcome: `delivered` says); a broken channel
    that delivers is active again."""
    done = await app.channels.test(owner, channel)
    if done.delivered:
        return ChannelTestOut(
            channel=channel, delivered=True, reason=None, reactivated=done.reactivated
        )
    return ChannelTestOut(
        channel=channel, delivered=False, reason=done.reason, permanent=done.permanent
    )


@router.delete("/v1/channels/{channel}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_channel(channel: str, owner: Owner, app: App) -> None:
    """Remove the channel; tasks that name it fail their notifications to it, with the
    reason."""
    await app.channels.remove(owner.id, channel)
