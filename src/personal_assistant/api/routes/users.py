"""``/v1/me``, and ``/v1/users`` for admins: list, create, read, edit, remove."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response, status

from personal_assistant.api.idempotency import IdempotencyKey, Made, once
from personal_assistant.api.schemas import Removed, UserEdit, UserIn, UserOut
from personal_assistant.api.security import AdminUser, App, Owner
from personal_assistant.app import views
from personal_assistant.errors import ConflictError

router = APIRouter(tags=["users"])


@router.get("/v1/me")
async def me(owner: Owner) -> UserOut:
    """The caller."""
    return UserOut.model_validate(views.user(owner))


@router.get("/v1/users")
async def list_users(_: AdminUser, app: App) -> list[UserOut]:
    """Every user (admins only)."""
    return [UserOut.model_validate(views.user(u)) for u in await app.tasks.list_users()]


@router.post("/v1/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def create_user(
    body: UserIn, admin: AdminUser, app: App, request: Request, key: IdempotencyKey = None
) -> Response:
    """Create a user (admins only). With an `Idempotency-Key`, the same request sent again
    answers the same user and creates none."""

    async def make() -> Made:
        user = await app.tasks.create_user(
            body.display_name,
            email=body.email,
            phone=body.phone,
            timezone=body.timezone,
            is_admin=body.is_admin,
        )
        return Made(201, UserOut.model_validate(views.user(user)), f"/v1/users/{user.id}")

    return await once(app, admin.id, key, request, body, make)


@router.get("/v1/users/{user_id}")
async def get_user(user_id: int, _: AdminUser, app: App) -> UserOut:
    """One user (admins only)."""
    return UserOut.model_validate(views.user(await app.tasks.get_user(user_id)))


@router.patch("/v1/users/{user_id}")
async def edit_user(user_id: int, body: UserEdit, admin: AdminUser, app: App) -> UserOut:
    """Change the fields given (admins only); `email` or `phone` null clears it. An admin
    cannot take their own admin role away (409): another admin does."""
    given = body.model_dump(exclude_unset=True)
    if user_id == admin.id and given.get("is_admin") is False:
        raise ConflictError("an admin cannot take their own admin role", field="is_admin")
    for clearable in ("email", "phone"):
        if clearable in given and given[clearable] is None:
            given[clearable] = ""
    user = await app.users.edit(user_id, **given)
    return UserOut.model_validate(views.user(user))


@router.delete("/v1/users/{user_id}")
async def remove_user(user_id: int, admin: AdminUser, app: App) -> Removed:
    """Remove a user with their tasks, runs, notifications, channels, calendars and keys
    (admins only); answers what was removed. An admin cannot remove themselves (409)."""
    if user_id == admin.id:
        raise ConflictError("an admin cannot remove themselves", field="user_id")
    return Removed(**asdict(await app.users.remove(user_id)))
