"""``/v1/runs`` and ``/v1/notifications``: what the caller's tasks did, and their inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from personal_assistant.api.schemas import Count, NotificationOut, ReadIn, RunOut
from personal_assistant.api.security import App, Owner
from personal_assistant.app import views

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/v1/runs", tags=["runs"])
async def list_runs(
    owner: Owner, app: App, state: str | None = None, limit: Limit = 50
) -> list[RunOut]:
    """The caller's runs, newest first."""
    runs = await app.tasks.list_runs(owner.id, state=state, limit=limit)
    return [RunOut.model_validate(views.run(r)) for r in runs]


@router.get("/v1/runs/{run_id}", tags=["runs"])
async def get_run(run_id: int, owner: Owner, app: App) -> RunOut:
    """One run of the caller's tasks."""
    return RunOut.model_validate(views.run(await app.tasks.get_run(run_id, owner.id)))


@router.get("/v1/notifications", tags=["notifications"])
async def list_notifications(
    owner: Owner, app: App, unread: bool = False, limit: Limit = 50
) -> list[NotificationOut]:
    """The caller's notifications, newest first."""
    notes = await app.tasks.list_notifications(owner.id, unread_only=unread, limit=limit)
    return [NotificationOut.model_validate(views.notification(n)) for n in notes]


@router.get("/v1/notifications/unread-count", tags=["notifications"])
async def unread_count(owner: Owner, app: App) -> Count:
    """How many of the caller's notifications are unread."""
    return Count(count=await app.tasks.count_unread(owner.id))


@router.post("/v1/notifications/read", tags=["notifications"])
async def mark_read(body: ReadIn, owner: Owner, app: App) -> Count:
    """Mark the caller's notifications of `ids` read; answers how many were unread."""
    return Count(count=await app.tasks.mark_notifications_read(owner.id, body.ids))
