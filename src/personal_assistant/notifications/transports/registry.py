"""The registry of transports: which transport sends each channel kind.

:data:`TRANSPORTS` maps a kind (:data:`~personal_assistant.notifications.channels.KINDS`) to the
transport class that sends it: the Apprise transport for every kind today. A second transport
for a kind is one more entry here; the outbox and its delivery do not change.
"""

from __future__ import annotations

from collections.abc import Mapping

from personal_assistant.channel_keys import ChannelCipher
from personal_assistant.notifications.channels import KINDS, Kind
from personal_assistant.notifications.transports.apprise import AppriseTransport
from personal_assistant.notifications.transports.base import Transport
from personal_assistant.outbound import STRICT, Policy

__all__ = ["SEND_TIMEOUT_S", "TRANSPORTS", "default_transports"]

#: The longest one send through the default transports may take (Apprise's timeout).
SEND_TIMEOUT_S = 30.0

#: The transport class of each channel kind.
TRANSPORTS: Mapping[Kind, type[AppriseTransport]] = dict.fromkeys(KINDS, AppriseTransport)


def default_transports(
    timeout: float = SEND_TIMEOUT_S,
    cipher: ChannelCipher | None = None,
    outbound: Policy = STRICT,
) -> dict[str, Transport]:
    """One transport per channel kind (:data:`TRANSPORTS`; kinds of one class share one),
    opening channel URLs with ``cipher`` (None: this process has no key, see
    :func:`~personal_assistant.channel_keys.optional_cipher`) and sending only where
    ``outbound`` allows (the settings' ``outbound_policy``)."""
    built: dict[type[AppriseTransport], Transport] = {}
    for cls in TRANSPORTS.values():
        if cls not in built:
            built[cls] = cls(cipher, timeout=timeout, outbound=outbound)
    return {kind: built[cls] for kind, cls in TRANSPORTS.items()}
