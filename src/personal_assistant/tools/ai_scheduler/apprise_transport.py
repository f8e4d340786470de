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
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

from personal_assistant.errors import DeliveryError
from personal_assistant.tools.ai_scheduler.channels import apprise_for, scrub
from personal_assistant.tools.ai_scheduler.message_content import Message
from personal_assistant.tools.ai_scheduler.notification_service import Recipient

REASON_MAX = 500
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


class AppriseTransport:
    """Sends through the Apprise URL of the recipient's channel (``Recipient.url``)."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"AppriseTransport(timeout={self._timeout!r})"

    async def send(self, recipient: Recipient, message: Message) -> None:
        url = recipient.url
        if not url:
            raise DeliveryError(
                f"no channel named {recipient.channel!r}: add one with "
                f"`pa channel add {recipient.channel} URL`",
                permanent=True,
            )
        handle = apprise_for(url, timeout=self._timeout)
        if handle is None:
            raise DeliveryError("Apprise does not accept this channel's URL", permanent=True)
        capture_apprise_debug()
        for service in handle:
            service.retry = 0  # the outbox retries, with backoff; Apprise must not
            headers = getattr(service, "headers", None)
            if message.key and isinstance(headers, dict):  # webhooks, e-mail and a few more
                headers[IDEMPOTENCY_HEADER] = message.key
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
        reason, permanent = classify(status, lines)
        raise DeliveryError(scrub(reason, url), permanent=permanent)
