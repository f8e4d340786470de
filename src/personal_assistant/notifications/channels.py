"""Notification channels (pure): names, kinds, Apprise URLs and their masking.

A user's channel is a name (``email``, ``work-slack``), a kind and an Apprise URL. The kind
follows from the URL's scheme (:data:`SCHEME_KINDS`): ``mailto``/``mailtos`` are ``email``,
``twilio`` and the other SMS gateways are ``sms``, ``json``/``form``/``xml`` are ``webhook``,
Slack, Discord, Telegram, ntfy and a few others are ``chat``. Any other scheme is refused, and
so is a URL Apprise does not accept (checked, with Apprise, by
:func:`~personal_assistant.notifications.transports.apprise_urls.validate`).

A task's ``notification_channels`` names ``in_app`` (always available: the notification is
delivered by writing its row) or channels of its owner. ``email``, ``sms`` and ``webhook``, the
names tasks used before channels existed, stay valid even before the owner has a channel of that
name: they mean "the user's channel named so", and a notification to a name the user has no
channel for fails with a reason that says how to add one.

URLs choose where the server connects
(:func:`~personal_assistant.notifications.transports.apprise_urls.destination_hosts`): the
outbound policy (:mod:`personal_assistant.outbound`) refuses internal destinations.

URLs carry secrets (passwords, tokens, webhook keys). :func:`mask_apprise_url` is the only form
in which one is ever printed, logged or put in a ``repr``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from personal_assistant import redaction
from personal_assistant.errors import ValidationError

IN_APP = "in_app"
#: Names tasks may use without the user having a channel of that name yet (see module doc).
LEGACY_NAMES = frozenset({"email", "sms", "webhook"})

Kind = Literal["email", "sms", "webhook", "chat"]
KINDS: tuple[Kind, ...] = ("email", "sms", "webhook", "chat")

SCHEME_KINDS: dict[str, Kind] = {
    **dict.fromkeys(("mailto", "mailtos"), "email"),
    **dict.fromkeys(
        (
            "twilio",
            "vonage",
            "nexmo",
            "plivo",
            "sinch",
            "clickatell",
            "d7sms",
            "bulksms",
            "msgbird",
            "msg91",
            "telnyx",
            "seven",
            "httpsms",
            "smseagle",
            "smseagles",
        ),
        "sms",
    ),
    **dict.fromkeys(("json", "jsons", "form", "forms", "xml", "xmls"), "webhook"),
    **dict.fromkeys(
        (
            "slack",
            "discord",
            "tgram",
            "ntfy",
            "ntfys",
            "mmost",
            "mmosts",
            "matrix",
            "matrixs",
            "signal",
            "signals",
        ),
        "chat",
    ),
}

NAME_MAX = 24
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
CAP_MAX = 10_000


@dataclass(frozen=True)
class ChannelSpec:
    """A validated channel: what ``pa channel add`` stores."""

    name: str
    kind: Kind
    url: str
    daily_cap: int | None

    def __repr__(self) -> str:
        return (
            f"ChannelSpec(name={self.name!r}, kind={self.kind!r}, "
            f"url={mask_apprise_url(self.url)!r}, daily_cap={self.daily_cap!r})"
        )


def slug(value: object, *, field: str, max_len: int, example: str) -> str:
    """A user-chosen name: lower-case letters, digits, ``-`` and ``_``, at most ``max_len``."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("must not be empty", field=field)
    name = value.strip()
    if len(name) > max_len:
        raise ValidationError(f"must be at most {max_len} characters", field=field)
    if not _NAME_RE.fullmatch(name):
        raise ValidationError(
            f"{name!r} must be lower-case letters, digits, '-' or '_' (e.g. {example})",
            field=field,
        )
    return name


def channel_name(value: object, field: str = "name") -> str:
    """A channel name: lower-case letters, digits, ``-`` and ``_``; ``in_app`` is reserved."""
    return slug(value, field=field, max_len=NAME_MAX, example="work-slack")


def notice_channel(name: str) -> str:
    """The outbox ``channel`` of the in-app notice that channel ``name`` broke."""
    return f"{IN_APP}:{name}"


def missing_channel(name: str) -> str:
    """Why a notification to ``name``, a channel its owner does not have, fails."""
    return f"no channel named {name!r}: add one with `pa channel add {name} URL`"


def is_in_app(channel: str) -> bool:
    """In-app rows (notifications and notices) are delivered by being written."""
    return channel == IN_APP or channel.startswith(f"{IN_APP}:")


def kind_of(url: str) -> Kind:
    """The channel kind of an Apprise URL, from its scheme; refuses schemes we do not route."""
    scheme, sep, _ = url.partition("://")
    kind = SCHEME_KINDS.get(scheme.lower()) if sep else None
    if kind is None:
        shown = f"{scheme}://" if sep else "(no scheme)"
        raise ValidationError(
            f"scheme {shown} is not supported; use mailto:// or mailtos:// (email), twilio:// "
            "and other SMS gateways (sms), json://, form:// or xml:// (webhook), or slack://, "
            "discord://, tgram://, ntfy:// (chat)",
            field="url",
        )
    return kind


def daily_cap(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= CAP_MAX:
        raise ValidationError(f"must be a whole number from 1 to {CAP_MAX}", field="cap")
    return value


def mask_apprise_url(url: str) -> str:
    """``url`` with its secrets replaced (pure): safe to print, log and store in errors.

    :func:`personal_assistant.redaction.mask_url`, the one masking: passwords and
    secret-looking query values (``token=``, ``key=``, ``pass=``...) become ``****``; e-mail and
    webhook schemes keep their host and path; for every other scheme (chat services, SMS
    gateways) each part of the host and path is a credential, a token or a phone number, and
    becomes ``****`` too (``tgram://****:****/****``).
    """
    return redaction.mask_url(url)


def secrets_of(url: str) -> list[str]:
    """The substrings of ``url`` that :func:`mask_apprise_url` hides, longest first."""
    return redaction.url_secrets(url)


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, a log line) with ``url``'s secrets masked."""
    return redaction.scrub(text, url)
