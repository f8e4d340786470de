"""``/v1/calendars``: the caller's iCalendar feeds, whose events become reminders
(``pa calendar``).

A feed URL may carry a secret (a private calendar link): every answer shows it masked, never
the URL given. A feed whose host resolves to an address the outbound policy refuses
(loopback, private, link-local, cloud metadata, unless ``OUTBOUND_ALLOW`` allows it) is refused
when added: a 422 naming ``url``. A calendar is named in paths by its name; another user's
answers 404, as an unknown one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from personal_assistant.api.idempotency import IdempotencyKey, Made, once
from personal_assistant.api.schemas import URL_CHARACTERS, _In
from personal_assistant.api.security import App, Owner
from personal_assistant.app import views
from personal_assistant.calendars import store
from personal_assistant.safe_text import safe_text

router = APIRouter(tags=["calendars"])


class CalendarIn(_In):
    name: str = Field(max_length=100, description="A name for the calendar, e.g. work.")
    url: str = Field(
        max_length=store.URL_MAX,
        pattern=URL_CHARACTERS,
        description="The feed's https://, http:// or webcal:// URL (an .ics link).",
    )
    lead_minutes: int = Field(default=15, description="Remind this long before each event.")
    horizon_days: int = Field(default=30, description="Make reminders this far ahead.")
    interval_minutes: int = Field(default=60, description="Fetch the feed this often.")
    channels: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Where reminders notify: in_app or the caller's channels; default in_app.",
    )


class CalendarOut(BaseModel):
    id: int
    name: str
    #: The URL with its secrets masked.
    url: str
    lead_minutes: int
    horizon_days: int
    interval_minutes: int
    channels: list[str]
    status: str
    next_sync_at: str | None
    last_synced_at: str | None
    last_error: str | None
    created_at: str | None
    #: Events to come (in lists only).
    upcoming_events: int | None = None


class SyncOut(BaseModel):
    """What a sync did, or the error it recorded (`error`), and when the next one is due."""

    feed_id: int
    name: str
    created: int
    updated: int
    removed: int
    unchanged: int
    not_modified: bool
    error: str | None
    next_sync_at: str | None


def calendar_out(feed: store.Feed, upcoming: int | None = None) -> CalendarOut:
    return CalendarOut(
        id=feed.id,
        name=feed.name,
        url=feed.masked_url,
        lead_minutes=feed.lead_minutes,
        horizon_days=feed.horizon_days,
        interval_minutes=feed.interval_minutes,
        channels=list(feed.channels),
        status=feed.status,
        next_sync_at=views.iso(feed.next_sync_at),
        last_synced_at=views.iso(feed.last_synced_at),
        last_error=None if feed.last_error is None else safe_text(feed.last_error),
        created_at=views.iso(feed.created_at),
        upcoming_events=upcoming,
    )


@router.get("/v1/calendars")
async def list_calendars(owner: Owner, app: App) -> list[CalendarOut]:
    """The caller's calendars, URLs masked, with their last sync and upcoming events."""
    feeds, counts = await app.calendars.list_with_counts(owner.id)
    return [calendar_out(f, counts.get(f.id, 0)) for f in feeds]


@router.post("/v1/calendars", status_code=status.HTTP_201_CREATED, response_model=CalendarOut)
async def add_calendar(
    body: CalendarIn, owner: Owner, app: App, request: Request, key: IdempotencyKey = None
) -> Response:
    """Subscribe to a feed; its first sync runs within a minute (or now: `.../sync`). An
    internal destination is a 422 naming `url`; a name the caller has already is a 409."""

    async def make() -> Made:
        spec = store.validate(
            body.name,
            body.url,
            lead_minutes=body.lead_minutes,
            horizon_days=body.horizon_days,
            interval_minutes=body.interval_minutes,
            channels=body.channels,
        )
        added = await app.calendars.add(owner.id, spec, check_destination=True)
        return Made(201, calendar_out(added), f"/v1/calendars/{added.name}")

    return await once(app, owner.id, key, request, body, make)


@router.post("/v1/calendars/{calendar}/sync")
async def sync_calendar(calendar: str, owner: Owner, app: App) -> SyncOut:
    """Sync the calendar now (200 whatever the outcome: a feed that cannot be read is in
    `error`, kept on the calendar too)."""
    report = await app.calendars.sync(owner.id, calendar)
    return SyncOut.model_validate(report.as_dict())


@router.delete("/v1/calendars/{calendar}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_calendar(calendar: str, owner: Owner, app: App) -> None:
    """Unsubscribe: delete the calendar, its events and its reminders that have not run."""
    await app.calendars.remove(owner.id, calendar)
