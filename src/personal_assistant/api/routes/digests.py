"""``/v1/digest``: the caller's daily digest of the day's runs (``pa user digest``), at a
wall-clock time in their zone, to ``in_app`` or one of their channels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from personal_assistant.api.schemas import ClockTime, Digest, _In, wall_time
from personal_assistant.api.security import App, Owner
from personal_assistant.app import views
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from personal_assistant.digests.sweep import DigestSetting

router = APIRouter(tags=["digest"])


class DigestIn(_In):
    """Give `at`, `channel` or both: what is left out keeps its value (`channel`: in_app for a
    first digest)."""

    at: ClockTime | None = None
    channel: str | None = Field(
        default=None, max_length=100, description="in_app or one of the caller's channels."
    )


class DigestOut(BaseModel):
    user_id: int
    timezone: str
    #: None: no daily digest.
    digest: Digest | None


def digest_out(setting: DigestSetting) -> DigestOut:
    shown = views.digest(setting.at, setting.channel, setting.next_at)
    return DigestOut(
        user_id=setting.user_id,
        timezone=setting.timezone,
        digest=None if shown is None else Digest.model_validate(shown),
    )


@router.get("/v1/digest")
async def get_digest(owner: Owner, app: App) -> DigestOut:
    """The caller's daily digest: when, where, and when it goes out next."""
    return digest_out(app.digests.current(owner))


@router.put("/v1/digest")
async def set_digest(body: DigestIn, owner: Owner, app: App) -> DigestOut:
    """Send the caller's digest at `at` to `channel` (an unknown channel is a 422 naming
    `channel`)."""
    if body.at is None and body.channel is None:
        raise ValidationError("give the time the digest goes out (HH:MM)", field="at")
    at = None if body.at is None else wall_time(body.at)
    return digest_out(await app.digests.set(owner, at, body.channel))


@router.delete("/v1/digest", status_code=status.HTTP_204_NO_CONTENT)
async def digest_off(owner: Owner, app: App) -> None:
    """No daily digest."""
    await app.digests.off(owner.id)
