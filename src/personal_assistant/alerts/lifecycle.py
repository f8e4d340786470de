"""An alert's episode from one evaluation to the next (pure; ``now`` is an argument).

An episode starts ``pending`` when its condition is first seen to hold. It **opens** (the
admins are told once) at the first evaluation at which the condition has held for
``open_after`` and the alert's last opening is at least ``cooldown`` ago; it is dropped
without a word if the condition clears first. An open episode **resolves** (told once more) at
the first evaluation that finds its condition clear. So each alert sends at most one
"opened" and one "resolved" per ``cooldown``, however its condition flaps: never a storm.
A condition that comes back within the cooldown waits, pending, until the cooldown is over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from personal_assistant.core.states import AlertStatus

__all__ = ["Episode", "Step", "step"]


@dataclass(frozen=True)
class Episode:
    """The alert's episode that is not resolved (its row in ``alerts``)."""

    id: int
    status: AlertStatus
    started_at: datetime


class Step(StrEnum):
    NOTHING = "nothing"
    #: The condition is first seen to hold: a pending episode begins.
    START = "start"
    #: Still holds, not told (yet): its figure is updated.
    HOLD = "hold"
    #: Held long enough, out of cooldown: the admins are told it opened.
    OPEN = "open"
    #: Cleared before it opened: the pending episode is dropped.
    DROP = "drop"
    #: Cleared while open: the admins are told it resolved.
    RESOLVE = "resolve"


def step(
    episode: Episode | None,
    holds: bool,
    now: datetime,
    *,
    open_after: timedelta,
    cooldown: timedelta,
    last_opened_at: datetime | None,
) -> Step:
    """What becomes of the alert's ``episode`` (None: none) when its condition ``holds`` or
    not at ``now``; ``last_opened_at``: when this alert last opened (None: never)."""
    if episode is None:
        return Step.START if holds else Step.NOTHING
    if episode.status == AlertStatus.OPEN:
        return Step.HOLD if holds else Step.RESOLVE
    if not holds:
        return Step.DROP
    held_long_enough = now - episode.started_at >= open_after
    cooled_down = last_opened_at is None or now - last_opened_at >= cooldown
    return Step.OPEN if held_long_enough and cooled_down else Step.HOLD
