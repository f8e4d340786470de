"""Which addresses an outbound request may connect to (pure).

Users choose the URLs this system connects to: calendar feeds, webhooks, mail relays, chat
servers. Without a rule, a user could point one at loopback, a private network or the cloud
metadata service (``169.254.169.254``) and read or poke what only the server can reach
(server-side request forgery), or map which internal ports are open.

:class:`Policy` says, for one IP address, whether it may be connected to. Refused by default:
every address that is not globally routable unicast, from the table :data:`_REFUSED_V4` and
:data:`_REFUSED_V6` (loopback, private, carrier-grade NAT, link-local with the metadata
service, unique-local, site-local, multicast, unspecified, documentation, benchmarking and
reserved ranges), and any IPv6 address outside global unicast ``2000::/3``. IPv6 forms that
carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4
``2002::/16``) are judged by the IPv4 address they reach. The table is written out here, not
taken from :mod:`ipaddress`'s ``is_private``/``is_global``, whose ranges changed between
Python releases (and which count multicast as global).

``allow`` (the ``OUTBOUND_ALLOW`` setting) lists networks that are allowed anyway: a
development machine's loopback, a deployment's own mail relay. It is checked first.

The check is on IP addresses, never names: whoever resolves a name (``http.py`` for feeds,
``sockets.py`` for channels) checks every address the name has, at connect time, and connects
only to an address it checked (DNS rebinding). :meth:`Policy.check` refuses a name if *any* of
its addresses is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from personal_assistant.errors import ValidationError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

#: IPv4 networks refused by default, with the reason (most specific first where they nest).
_REFUSED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified (this network)"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved (protocol assignments)"),
        ("192.0.2.0/24", "reserved (documentation)"),
        ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("198.51.100.0/24", "reserved (documentation)"),
        ("203.0.113.0/24", "reserved (documentation)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved (and broadcast)"),
    )
)
#: IPv6 networks refused by default; anything outside ``2000::/3`` is refused too.
_REFUSED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "reserved (local-use NAT64)"),
        ("100::/64", "reserved (discard-only)"),
        ("2001::/23", "reserved (protocol assignments, Teredo)"),
        ("2001:db8::/32", "reserved (documentation)"),
        ("3fff::/20", "reserved (documentation)"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")
_6TO4 = IPv6Network("2002::/16")

#: What a refusal says: neither the address nor its kind (a user must not learn, through the
#: message, what an internal name resolves to). The reason is kept on the exception.
REFUSED_MESSAGE = "refused destination: not a public address (internal addresses are refused)"


class RefusedDestination(ValidationError):
    """A connection the outbound policy refuses; ``reason`` (for logs and tests) says why."""

    def __init__(self, reason: str, *, field: str = "url", message: str = REFUSED_MESSAGE) -> None:
        super().__init__(message, field=field)
        self.reason = reason


def parse_allow(text: str) -> tuple[Network, ...]:
    """The networks of a comma-separated CIDR list (``127.0.0.0/8, ::1/128``); empty: none.

    Raises ValueError naming the entry: a host address is written with its prefix
    (``10.0.0.5/32``), and an entry with host bits set (``10.0.0.1/8``) is refused as a typo.
    """
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            if "/" not in entry:
                raise ValueError(entry)
            networks.append(ip_network(entry, strict=True))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not a network in CIDR form (e.g. 127.0.0.0/8, 10.1.2.3/32, ::1/128)"
            ) from None
    return tuple(networks)


def _embedded_v4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through mapping, NAT64 or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _6TO4:
        return address.sixtofour
    return None


def _refused_v4(address: IPv4Address) -> str | None:
    for network, reason in _REFUSED_V4:
        if address in network:
            return reason
    return None


def _refused_v6(address: IPv6Address) -> str | None:
    embedded = _embedded_v4(address)
    if embedded is not None:
        return _refused_v4(embedded)
    for network, reason in _REFUSED_V6:
        if address in network:
            return reason
    if address not in _GLOBAL_UNICAST:
        return "reserved (not global unicast)"
    return None


@dataclass(frozen=True)
class Policy:
    """The outbound policy: refuse what is not public, except the ``allow`` networks."""

    allow: tuple[Network, ...] = ()

    def refusal(self, address: Address | str) -> str | None:
        """Why ``address`` is refused (``"loopback"``, ``"private"``...), or None if allowed."""
        found = ip_address(address) if isinstance(address, str) else address
        if isinstance(found, IPv6Address) and found.scope_id:
            found = IPv6Address(str(found).split("%", 1)[0])
        candidates: list[Address] = [found]
        if isinstance(found, IPv6Address) and found.ipv4_mapped is not None:
            candidates.append(found.ipv4_mapped)
        for candidate in candidates:
            if any(candidate.version == n.version and candidate in n for n in self.allow):
                return None
        if isinstance(found, IPv4Address):
            return _refused_v4(found)
        return _refused_v6(found)

    def allows(self, address: Address | str) -> bool:
        return self.refusal(address) is None

    def check(self, host: str, addresses: Iterable[Address | str], *, field: str = "url") -> None:
        """Refuse ``host`` (:class:`RefusedDestination`) unless every one of its resolved
        ``addresses`` is allowed; a name with no address at all is refused too."""
        found = list(addresses)
        if not found:
            raise RefusedDestination(f"{host!r} has no address", field=field)
        for address in found:
            reason = self.refusal(address)
            if reason is not None:
                raise RefusedDestination(reason, field=field)


#: The default: nothing internal is allowed.
STRICT = Policy()
