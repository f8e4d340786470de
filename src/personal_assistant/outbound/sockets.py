"""The outbound policy for connections opened by libraries we do not drive: Apprise's.

Notification channels are sent by Apprise, whose plugins connect with ``requests`` (urllib3:
webhooks, chat services, SMS gateways) or :mod:`smtplib` (e-mail). Checking a channel's host
before the send leaves a window in which its name can resolve elsewhere (DNS rebinding), and
e-mail plugins connect to a relay the URL does not name (``smtp=``, or a provider's template).
So, while a send runs inside :func:`guarded`, every connection those two libraries open goes
through :func:`connect`: it resolves the host, checks every address against the policy and
connects to a checked address by IP. TLS keeps verifying the host name: urllib3 and smtplib
take the name for SNI and the certificate from the URL, not from the socket.

The hooks are installed once, on the first :func:`guarded` call (not at import):
``urllib3.util.connection.create_connection`` and ``smtplib.SMTP._get_socket``. Outside a
guarded send (any other thread or task: the guard is a context variable, which Apprise copies
into the threads it sends from) they behave exactly as before.

What the guard saw is kept on the :class:`Guard`: ``refused`` (a destination the policy
refused, no connection attempted) and ``failed`` (a connection that failed). A refusal raises
an ``OSError`` into the library, which Apprise reports as a failed send; the caller reads the
guard to say why, in words that do not tell a closed port from a filtered one.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from personal_assistant.outbound.policy import Policy, RefusedDestination

CONNECTION_FAILED = "connection failed"


class DestinationRefusedError(OSError):
    """Raised into the library when the policy refuses a connection (see :class:`Guard`)."""


@dataclass
class Guard:
    """The policy of one guarded send, and what its connections met."""

    policy: Policy
    refused: RefusedDestination | None = None
    failed: bool = False


_active: ContextVar[Guard | None] = ContextVar("personal_assistant_outbound_guard", default=None)
_install_lock = threading.Lock()
_installed = False


def addresses(host: str, port: int | None) -> list[str]:
    """Every address of ``host`` (blocking: call it from a thread); raises ``OSError``."""
    found = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))


def check_host(host: str, policy: Policy, *, field: str = "url") -> None:
    """Refuse ``host`` (:class:`RefusedDestination`) if one of its addresses is refused.

    A name that does not resolve now is not refused here: nothing can connect to it, and the
    connect-time check of the send judges whatever it resolves to then.
    """
    try:
        found = addresses(host, None)
    except (OSError, UnicodeError):
        return
    policy.check(host, found, field=field)


def connect(
    guard: Guard,
    address: tuple[str, int],
    opener: Any,
    *args: Any,
    **kwargs: Any,
) -> socket.socket:
    """Resolve ``address``'s host, check every address, open with ``opener((ip, port), ...)``."""
    host, port = address
    try:
        found: Sequence[str] = addresses(host, port)
    except (OSError, UnicodeError):
        guard.failed = True
        raise OSError(CONNECTION_FAILED) from None
    try:
        guard.policy.check(host, found)
    except RefusedDestination as refused:
        guard.refused = refused
        raise DestinationRefusedError(refused.message) from None
    for ip in found:
        try:
            sock: socket.socket = opener((ip, port), *args, **kwargs)
        except OSError:  # refused, unreachable or timed out: not told apart (module doc)
            continue
        return sock
    guard.failed = True
    raise OSError(CONNECTION_FAILED)


@contextmanager
def guarded(policy: Policy) -> Iterator[Guard]:
    """Within the block, the connections urllib3 and smtplib open obey ``policy``."""
    install()
    guard = Guard(policy)
    token = _active.set(guard)
    try:
        yield guard
    finally:
        _active.reset(token)


def install() -> None:
    """Install the two hooks (idempotent; see the module doc)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import urllib3.util.connection as urllib3_connection

        plain_urllib3 = urllib3_connection.create_connection

        def urllib3_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
            guard = _active.get()
            if guard is None:
                return plain_urllib3(address, *args, **kwargs)
            return connect(guard, address, plain_urllib3, *args, **kwargs)

        # Not in typeshed, but in smtplib since Python 2.6 (SMTP_SSL calls it through super()).
        plain_get_socket = smtplib.SMTP._get_socket  # type: ignore[attr-defined]

        def smtp_get_socket(self: smtplib.SMTP, host: str, port: int, timeout: float) -> Any:
            guard = _active.get()
            if guard is None:
                return plain_get_socket(self, host, port, timeout)
            return connect(
                guard, (host, port), socket.create_connection, timeout, self.source_address
            )

        urllib3_connection.create_connection = urllib3_create_connection
        smtplib.SMTP._get_socket = smtp_get_socket  # type: ignore[attr-defined]  # see above
        _installed = True
