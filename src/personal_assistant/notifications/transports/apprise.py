"""The Apprise transport: one notification to one channel URL, failures as ``DeliveryError``.

Apprise's own retries are turned off (the outbox retries, with backoff, and records each
attempt). A failure is permanent when Apprise's log shows a configuration or authentication
problem (HTTP 400/401/403/404/410/422, SMTP authentication refused or recipient rejected, a URL
Apprise no longer accepts), transient otherwise (timeouts, connection errors, HTTP 408/429/5xx).
:func:`classify` makes that decision (pure). Error texts are scrubbed of the URL's secrets.

Apprise tells some of those causes only at DEBUG level: its e-mail plugin logs a refused SMTP
login as a WARNING "Connection error" and the server's ``535`` answer as DEBUG. A call's log
capture sees only records its logger lets through, so :func:`capture_apprise_debug` sets the
``apprise`` logger to DEBUG and stops its propagation, forwarding only WARNING and above to the
root logger's handlers: the capture gets every record, the process log no more than before.

Every destination obeys the outbound policy (:mod:`personal_assistant.outbound`): the hosts the
URL chooses (:func:`~.apprise_urls.destination_hosts`) are resolved and checked before the send,
so a refused channel answers without any connection; and the send runs inside
:func:`~personal_assistant.outbound.sockets.guarded`, which checks again, at connect time, every
connection Apprise opens (a name resolving elsewhere by then, a relay the URL does not name). A
refused destination is a permanent failure naming ``url``. A connection that fails, whether the
port is closed, filtered or unreachable, reads the same: "could not connect: connection failed",
transient; Apprise's own words, which tell those apart, are not shown then.

The channel's URL arrives sealed (``Recipient.sealed_url``) and is opened here, at the send, with
the channel keys (:mod:`personal_assistant.channel_keys`): a URL no key opens is a permanent
failure (:data:`~personal_assistant.channel_keys.UNREADABLE`); a process with no key at all
fails transiently, for a worker that has the key to retry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from personal_assistant.channel_keys import ChannelCipher, UnknownKeyError
from personal_assistant.errors import DeliveryError
from personal_assistant.notifications.channels import missing_channel, scrub
from personal_assistant.notifications.transports.apprise_urls import apprise_for, destination_hosts
from personal_assistant.notifications.transports.base import Message, Recipient
from personal_assistant.outbound import STRICT, Policy, RefusedDestination
from personal_assistant.outbound import sockets as outbound_sockets

if TYPE_CHECKING:
    import apprise

REASON_MAX = 500
#: A send whose connection failed says only this (closed, filtered, unreachable: alike).
CONNECTION_FAILED = f"could not connect: {outbound_sockets.CONNECTION_FAILED}"
#: Where a channel has headers (webhooks, e-mail), each message carries its notification's key:
#: a delivery retried after a crash mid-send arrives with the same key, and can be dropped.
IDEMPOTENCY_HEADER = "Idempotency-Key"
_HTTP_CODE = re.compile(r"error=(\d{3})\b|\b(?:HTTP|status)[ :=]*(\d{3})\b", re.IGNORECASE)
_PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 410, 422})
_PERMANENT_WORDS = re.compile(
    r"SMTPAuthenticationError|SMTPRecipientsRefused|SMTPSenderRefused|\b535\b|\b550\b|"
    r"authentication (?:failed|unsuccessful|credentials invalid)|improperly configured|"
    r"invalid (?:api )?(?:token|key|credentials)",
    re.IGNORECASE,
)


def classify(status: str, lines: Sequence[tuple[str, str]]) -> tuple[str, bool]:
    """``(reason, permanent)`` for a failed Apprise call (pure).

    ``status`` is the result status name (``FAILURE``, ``TIMEOUT``...); ``lines`` are the
    captured ``(level, message)`` log entries, oldest first.
    """
    if status == "TIMEOUT":
        return "the service did not answer in time", False
    text = "\n".join(message for _, message in lines)
    shown = [m for level, m in lines if level in ("WARNING", "ERROR", "CRITICAL")]
    detail = [m for level, m in lines if level == "DEBUG" and "Exception" in m]
    reason = "; ".join([*shown[-1:], *detail[-1:]]) or f"Apprise reported {status}"
    reason = " ".join(reason.split())[:REASON_MAX]
    for match in _HTTP_CODE.finditer(text):
        code = int(match.group(1) or match.group(2))
        if code in _PERMANENT_HTTP:
            return reason, True
    return reason, bool(_PERMANENT_WORDS.search(text))


class _ForwardToRoot(logging.Handler):
    """Hands the ``apprise`` logger's WARNING+ records to the root logger's handlers."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


_capture_lock = threading.Lock()


def capture_apprise_debug() -> None:
    """Let Apprise's per-call log capture see DEBUG records (idempotent; see the module doc)."""
    apprise_log = logging.getLogger("apprise")
    with _capture_lock:
        if any(isinstance(h, _ForwardToRoot) for h in apprise_log.handlers):
            return
        apprise_log.addHandler(_ForwardToRoot())
        apprise_log.propagate = False
        apprise_log.setLevel(logging.DEBUG)


def check_destination(url: str, outbound: Policy) -> None:
    """Refuse (:class:`RefusedDestination`, field ``url``) a channel URL whose chosen hosts
    resolve to an address ``outbound`` refuses. Blocking (DNS): ``pa channel add`` calls it."""
    handle = apprise_for(url)
    if handle is not None:
        _check_hosts(handle, outbound)


def _check_hosts(handle: apprise.Apprise, outbound: Policy) -> None:
    for host in destination_hosts(handle):
        outbound_sockets.check_host(host, outbound)


class AppriseTransport:
    """Sends through the Apprise URL of the recipient's channel, opened with ``cipher``, to
    destinations ``outbound`` allows (by default nothing internal)."""

    def __init__(
        self, cipher: ChannelCipher | None, *, timeout: float = 30.0, outbound: Policy = STRICT
    ) -> None:
        self._cipher = cipher
        self._timeout = timeout
        self._outbound = outbound

    def __repr__(self) -> str:
        return f"AppriseTransport({self._cipher!r}, timeout={self._timeout!r})"

    async def send(self, recipient: Recipient, message: Message) -> None:
        if not recipient.sealed_url:
            raise DeliveryError(missing_channel(recipient.channel), permanent=True)
        url = self._open(recipient.sealed_url)
        handle = apprise_for(url, timeout=self._timeout)
        if handle is None:
            raise DeliveryError("Apprise does not accept this channel's URL", permanent=True)
        try:
            await asyncio.to_thread(_check_hosts, handle, self._outbound)
        except RefusedDestination as refused:
            raise DeliveryError(str(refused), permanent=True) from None
        capture_apprise_debug()
        for service in handle:
            service.retry = 0  # the outbox retries, with backoff; Apprise must not
            headers = getattr(service, "headers", None)
            if message.key and isinstance(headers, dict):  # webhooks, e-mail and a few more
                headers[IDEMPOTENCY_HEADER] = message.key
        with outbound_sockets.guarded(self._outbound) as guard:
            result = await handle.async_notify(
                body=message.body or message.title or "-",
                title=message.title,
                timeout=self._timeout,
                log_level=logging.DEBUG,
            )
        with result:
            if result:
                return
            status = result.status.name
            lines = [(entry.level, entry.message) for entry in result.logs()]
        if guard.refused is not None:
            raise DeliveryError(str(guard.refused), permanent=True)
        if guard.failed:
            raise DeliveryError(CONNECTION_FAILED, permanent=False)
        reason, permanent = classify(status, lines)
        raise DeliveryError(scrub(reason, url), permanent=permanent)

    def _open(self, sealed: str) -> str:
        if self._cipher is None:
            raise DeliveryError(
                "cannot decrypt: CHANNEL_KEYS is not set for this process", permanent=False
            )
        try:
            return self._cipher.open(sealed)
        except UnknownKeyError as exc:
            raise DeliveryError(exc.message, permanent=True) from None
