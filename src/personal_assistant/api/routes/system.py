"""``/v1/status``, and ``/healthz`` (no key: is the server up)."""

from __future__ import annotations

from fastapi import APIRouter

from personal_assistant.api.schemas import Status
from personal_assistant.api.security import App, Owner

router = APIRouter()


@router.get("/healthz", tags=["system"], include_in_schema=True)
async def healthz() -> dict[str, bool]:
    """The server answers (no key needed; says nothing of the deployment)."""
    return {"ok": True}


@router.get("/v1/status", tags=["system"])
async def deployment_status(_: Owner, app: App) -> Status:
    """Is the deployment making progress (`pa status`)?"""
    health = await app.system.health()
    return Status(healthy=health.healthy, problems=list(health.problems))
