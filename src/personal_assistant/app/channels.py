"""The channels operations of the façade: a user's notification channels and quiet hours.

Channel URLs are sealed with the channel keys (:func:`~personal_assistant.channel_keys.
channel_cipher`) before they are stored; a destination is checked against the outbound policy
before a channel is added, and again by every send, the test send included.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from personal_assistant.app._base import Part
from personal_assistant.channel_keys import channel_cipher
from personal_assistant.errors import DeliveryError
from personal_assistant.notifications import channel_store
from personal_assistant.notifications.channels import channel_name
from personal_assistant.notifications.delivery import NotificationService
from personal_assistant.notifications.transports.apprise import check_destination
from personal_assistant.notifications.transports.base import Recipient

if TYPE_CHECKING:
    from personal_assistant.database.models import User
    from personal_assistant.notifications.channels import ChannelSpec
    from personal_assistant.notifications.policy import QuietHours


@dataclass(frozen=True)
class ChannelTest:
    """What a test send did: delivered (and whether that made a broken channel active again),
    or not, with the reason and whether the failure is permanent."""

    delivered: bool
    reason: str | None = None
    permanent: bool = False
    reactivated: bool = False


class Channels(Part):
    """Add, list, test and remove a user's channels; set quiet hours; rotate the keys."""

    async def add(self, owner_id: int, spec: ChannelSpec) -> channel_store.Channel:
        """Store the channel of ``spec`` (already validated) for the user, its URL sealed.

        A destination the outbound policy refuses is refused (field ``url``) before anything is
        stored; a name the user already has is a conflict (field ``name``).
        """
        await asyncio.to_thread(check_destination, spec.url, self.settings.outbound_policy)
        cipher = channel_cipher(self.settings)
        async with self.engine.begin() as conn:
            return await channel_store.add(conn, owner_id, spec, cipher=cipher, now=self.clock())

    async def list_for(self, owner_id: int) -> list[channel_store.Channel]:
        """The user's channels, by name."""
        async with self.engine.connect() as conn:
            return await channel_store.list_for(conn, owner_id)

    async def test(self, owner: User, name: str) -> ChannelTest:
        """Send a test message through the user's channel ``name`` now, with no transaction
        open; a broken channel that delivers is made active again."""
        cipher = channel_cipher(self.settings)
        async with self.engine.connect() as conn:
            channel = await channel_store.get(conn, owner.id, channel_name(name))
        recipient = Recipient(owner.id, owner.display_name, owner.email, owner.phone, channel.name)
        service = NotificationService(
            self.engine, cipher=cipher, outbound=self.settings.outbound_policy
        )
        try:
            await service.send_test(channel, recipient)
        except DeliveryError as exc:
            return ChannelTest(False, exc.message, permanent=exc.permanent)
        async with self.engine.begin() as conn:
            revived = await channel_store.reactivate(conn, channel.id)
        return ChannelTest(True, reactivated=revived)

    async def remove(self, owner_id: int, name: str) -> channel_store.Channel:
        """Remove the user's channel ``name``; the removed channel is returned."""
        async with self.engine.begin() as conn:
            return await channel_store.remove(conn, owner_id, channel_name(name))

    async def rotate_keys(self) -> channel_store.Rotation:
        """Seal every user's channel URLs again with the first channel key (in batches)."""
        return await channel_store.rotate_keys(self.engine, channel_cipher(self.settings))

    async def set_quiet_hours(self, owner_id: int, hours: QuietHours | None) -> None:
        """Set the user's quiet hours (``None``: none)."""
        async with self.engine.begin() as conn:
            await channel_store.set_quiet_hours(conn, owner_id, hours)
