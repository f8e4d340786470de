"""``/v1/quiet-hours``: when the caller's notifications wait (``pa user quiet``).

Notifications due inside the quiet hours are delivered when they end; the times are wall-clock
times in the caller's zone, and the end may be after midnight (``22:00`` to ``07:00``).
"""

from __future__ import annotations

from datetime import time

from fastapi import APIRouter, status
from pydantic import BaseModel

from personal_assistant.api.schemas import ClockTime, _In, wall_time
from personal_assistant.api.security import App, Owner
from personal_assistant.errors import ValidationError
from personal_assistant.notifications.policy import QuietHours

router = APIRouter(tags=["channels"])


class QuietHoursIn(_In):
    start: ClockTime
    end: ClockTime


class QuietHoursOut(BaseModel):
    user_id: int
    timezone: str
    #: ``[start, end]`` (``HH:MM``), or None: no quiet hours.
    quiet_hours: list[str] | None


def _shown(start: time | None, end: time | None) -> list[str] | None:
    return None if start is None or end is None else [f"{start:%H:%M}", f"{end:%H:%M}"]


@router.get("/v1/quiet-hours")
async def get_quiet_hours(owner: Owner) -> QuietHoursOut:
    """The caller's quiet hours (None: none)."""
    shown = _shown(owner.quiet_start, owner.quiet_end)
    return QuietHoursOut(user_id=owner.id, timezone=owner.timezone, quiet_hours=shown)


@router.put("/v1/quiet-hours")
async def set_quiet_hours(body: QuietHoursIn, owner: Owner, app: App) -> QuietHoursOut:
    """Set the caller's quiet hours; `end` must differ from `start`."""
    hours = QuietHours(wall_time(body.start), wall_time(body.end))
    if hours.start == hours.end:
        raise ValidationError("must differ from start", field="end")
    await app.channels.set_quiet_hours(owner.id, hours)
    shown = _shown(hours.start, hours.end)
    return QuietHoursOut(user_id=owner.id, timezone=owner.timezone, quiet_hours=shown)


@router.delete("/v1/quiet-hours", status_code=status.HTTP_204_NO_CONTENT)
async def clear_quiet_hours(owner: Owner, app: App) -> None:
    """No quiet hours: notifications go out when due."""
    await app.channels.set_quiet_hours(owner.id, None)
