"""The digests operations of the façade: a user's daily digest, when and where it goes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from personal_assistant.app._base import Part
from personal_assistant.digests.sweep import DigestSetting, set_digest
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from datetime import time

    from personal_assistant.database.models import User


class Digests(Part):
    """Show, set and turn off a user's daily digest."""

    def current(self, owner: User) -> DigestSetting:
        """The user's digest as read with ``owner`` (no query)."""
        return DigestSetting(
            owner.id, owner.timezone, owner.digest_at, owner.digest_channel, owner.next_digest_at
        )

    async def set(self, owner: User, at: time | None, channel: str | None) -> DigestSetting:
        """Send the user's digest at ``at`` (None: the time it has, for a new channel alone)
        to ``channel`` (None: the one it has, else ``in_app``). Errors name ``at``/``channel``.
        """
        new_at = at if at is not None else owner.digest_at
        if new_at is None:
            raise ValidationError("give the time the digest goes out: --at HH:MM", field="at")
        async with self.engine.begin() as conn:
            return await set_digest(conn, owner.id, new_at, channel, now=self.clock())

    async def off(self, owner_id: int) -> DigestSetting:
        """Turn the user's daily digest off."""
        async with self.engine.begin() as conn:
            return await set_digest(conn, owner_id, None, None, now=self.clock())
