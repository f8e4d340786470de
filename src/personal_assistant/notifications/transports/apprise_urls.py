"""What Apprise makes of a channel URL: whether it accepts it, and the hosts it connects to.

Apprise is imported on first use, never when this module is: the pure channel rules
(:mod:`~personal_assistant.notifications.channels`) stay free of it. :func:`validate` checks a
new channel with those rules and with Apprise; :func:`destination_hosts` tells the outbound
policy (:mod:`personal_assistant.outbound`) where a URL would send.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from personal_assistant.errors import ValidationError
from personal_assistant.notifications.channels import (
    IN_APP,
    ChannelSpec,
    channel_name,
    daily_cap,
    kind_of,
    mask_apprise_url,
)

if TYPE_CHECKING:
    import apprise

__all__ = ["apprise_accepts", "apprise_for", "destination_hosts", "validate"]


def validate(name: object, url: object, cap: object = None) -> ChannelSpec:
    """Check a new channel: its name, a supported scheme, and a URL Apprise accepts."""
    checked_name = channel_name(name)
    if checked_name == IN_APP:
        raise ValidationError("in_app is built in and always available", field="name")
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("must not be empty", field="url")
    cleaned = url.strip()
    if any(ch.isspace() for ch in cleaned):
        raise ValidationError("must not contain spaces", field="url")
    kind = kind_of(cleaned)
    if not apprise_accepts(cleaned):
        raise ValidationError(
            f"Apprise does not accept {mask_apprise_url(cleaned)}: check its form for this "
            "service (https://github.com/caronc/apprise/wiki)",
            field="url",
        )
    return ChannelSpec(checked_name, kind, cleaned, daily_cap(cap))


def apprise_accepts(url: str) -> bool:
    """Does Apprise recognise ``url`` as exactly one service?"""
    return apprise_for(url) is not None


def apprise_for(url: str, *, timeout: float = 30.0) -> apprise.Apprise | None:
    """An ``Apprise`` holding exactly the one service of ``url``, or None if it refuses it.

    Apprise is imported on first use. Loading its email plugin imports PGPy, which imports the
    deprecated ``imghdr`` module: that one DeprecationWarning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        import apprise

        handle = apprise.Apprise(
            asset=apprise.AppriseAsset(storage_mode="memory", service_timeout=timeout)
        )
        if not handle.add(url) or len(handle) != 1:
            return None
    return handle


def destination_hosts(handle: apprise.Apprise) -> list[str]:
    """The hosts the services of ``handle`` connect to where the URL chooses them (pure).

    An e-mail plugin's relay (``smtp_host``: the URL's host, its ``smtp=``, or a provider's
    template), or the host of a webhook or self-hosted service (ntfy, Mattermost, Matrix,
    Signal...: the plugins whose URL template has a ``host``). A service at a fixed address
    (Slack, Telegram, ntfy.sh...) has none. The outbound policy checks these when a channel is
    added and before a send; the send itself is checked at connect time
    (:mod:`personal_assistant.outbound.sockets`).
    """
    hosts: list[str] = []
    for service in handle:
        smtp_host = getattr(service, "smtp_host", None)
        host = getattr(service, "host", None) if "host" in service.template_tokens else None
        chosen = smtp_host if isinstance(smtp_host, str) and smtp_host else host
        if isinstance(chosen, str) and chosen and chosen not in hosts:
            hosts.append(chosen)
    return hosts
