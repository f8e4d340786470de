"""``/v1/me``, ``/v1/users`` (admins), ``/v1/status``, and ``/healthz`` (no key: is the server
up)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from personal_assistant.api.schemas import Status, UserIn, UserOut
from personal_assistant.api.security import AdminUser, App, Owner
from personal_assistant.app import views

router = APIRouter()


@router.get("/healthz", tags=["system"], include_in_schema=True)
async def healthz() -> dict[str, bool]:
    """The server answers (no key needed; says nothing of the deployment)."""
    return {"ok": True}


@router.get("/v1/me", tags=["users"])
async def me(owner: Owner) -> UserOut:
    """The caller."""
    return UserOut.model_validate(views.user(owner))


@router.get("/v1/users", tags=["users"])
async def list_users(_: AdminUser, app: App) -> list[UserOut]:
    """Every user (admins only)."""
    return [UserOut.model_validate(views.user(u)) for u in await app.tasks.list_users()]


@router.post("/v1/users", tags=["users"], status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, _: AdminUser, app: App, response: Response) -> UserOut:
    """Create a user (admins only)."""
    user = await app.tasks.create_user(
        body.display_name,
        email=body.email,
        phone=body.phone,
        timezone=body.timezone,
        is_admin=body.is_admin,
    )
    response.headers["Location"] = f"/v1/users/{user.id}"
    return UserOut.model_validate(views.user(user))


@router.get("/v1/status", tags=["system"])
async def deployment_status(_: Owner, app: App) -> Status:
    """Is the deployment making progress (`pa status`)?"""
    health = await app.system.health()
    return Status(healthy=health.healthy, problems=list(health.problems))
