"""One outbound-request policy for every connection a user's URL can cause.

:mod:`.policy` (pure) says which IP addresses may be connected to. :mod:`.http` builds the
httpx client of calendar-feed fetches, and :mod:`.sockets` guards the connections Apprise
opens for notification channels: both resolve the host themselves, check every address at
connect time and connect only to an address they checked. Only the pure names are handed on
here, so that importing the policy (the settings do) imports no network library.
"""

from personal_assistant.outbound.policy import (
    REFUSED_MESSAGE,
    STRICT,
    Address,
    Network,
    Policy,
    RefusedDestination,
    parse_allow,
)

__all__ = [
    "REFUSED_MESSAGE",
    "STRICT",
    "Address",
    "Network",
    "Policy",
    "RefusedDestination",
    "parse_allow",
]
