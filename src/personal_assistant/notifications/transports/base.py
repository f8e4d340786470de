"""The transport seam (pure): what a transport is given, and the :class:`Transport` protocol.

A transport sends one :class:`Message` to one :class:`Recipient` and raises
:class:`~personal_assistant.errors.DeliveryError` when it cannot: ``permanent`` for a failure
that retrying will not fix (the channel is then marked broken, with the reason), transient
otherwise (the outbox retries with backoff). Which transport sends which channel kind is the
registry's business (:mod:`~personal_assistant.notifications.transports.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Message", "Recipient", "Transport"]


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    #: Stable across every attempt to deliver one notification, so that a receiver can drop a
    #: second copy (sent as the ``Idempotency-Key`` header where the channel has headers).
    key: str | None = None


@dataclass(frozen=True)
class Recipient:
    user_id: int
    display_name: str
    email: str | None
    phone: str | None
    channel: str = ""
    #: The Apprise URL of the user's channel, sealed: the transport that sends opens it.
    sealed_url: str | None = None

    def __repr__(self) -> str:
        return f"Recipient(user_id={self.user_id!r}, channel={self.channel!r})"


class Transport(Protocol):
    """Sends one notification; raises :class:`DeliveryError` (``permanent`` or not)."""

    async def send(self, recipient: Recipient, message: Message) -> None: ...
