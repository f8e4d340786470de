"""The outbound policy: which addresses a feed fetch or a channel may connect to (pure).

Issue 10, item 1: a feed URL (or a redirect) to loopback, a private network or the cloud
metadata address was fetched. Every internal, special-purpose and multicast address is refused
by default, IPv4-mapped IPv6 forms included; ``OUTBOUND_ALLOW`` names networks that are allowed
anyway (development and tests).
"""

from __future__ import annotations

import pytest

from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError, ValidationError
from personal_assistant.outbound import STRICT, Policy, RefusedDestination, parse_allow

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "shared"),  # carrier-grade NAT
    ("100.127.255.255", "shared"),
    ("fd00::1", "unique-local"),
    ("fc00::1", "unique-local"),
    ("fd00:ec2::254", "unique-local"),  # AWS's IPv6 metadata address
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "reserved"),
    ("198.18.0.1", "reserved"),
    ("2001:db8::1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.0.0.1", "private"),
    ("::127.0.0.1", "reserved"),  # IPv4-compatible (deprecated)
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
    ("2001::1", "reserved"),  # Teredo
    ("100::1", "reserved"),  # discard-only
]

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.15.255.255",  # just outside 172.16.0.0/12
    "172.32.0.0",
    "100.63.255.255",  # just outside 100.64.0.0/10
    "100.128.0.0",
    "169.253.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4007:80f::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_internal_and_special_addresses_are_refused(address: str, reason: str) -> None:
    refusal = STRICT.refusal(address)
    assert refusal is not None and refusal.startswith(reason), refusal
    assert not STRICT.allows(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert STRICT.refusal(address) is None
    assert STRICT.allows(address)


def test_an_allow_list_overrides_the_refusal_for_its_networks_only() -> None:
    policy = Policy(parse_allow("127.0.0.1/32, 10.1.0.0/16,fd00::/64"))
    for allowed in ("127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3", "fd00::5"):
        assert policy.allows(allowed), allowed
    for refused in ("127.0.0.2", "10.2.0.1", "fd00:0:0:1::5", "169.254.169.254", "::1"):
        assert not policy.allows(refused), refused
    assert policy.allows("93.184.216.34")


def test_check_refuses_a_host_if_any_of_its_addresses_is_refused() -> None:
    """A name with one public and one internal address is refused: whichever the connection
    would use, the check cannot know the attacker's order."""
    STRICT.check("feeds.example", ["93.184.216.34"])
    with pytest.raises(RefusedDestination) as err:
        STRICT.check("feeds.example", ["93.184.216.34", "127.0.0.1"])
    assert isinstance(err.value, ValidationError) and err.value.field == "url"
    assert err.value.reason.startswith("loopback")
    # The message names neither the resolved address nor its kind (no oracle on internal DNS).
    assert "127.0.0.1" not in str(err.value) and "loopback" not in str(err.value)
    assert "refused destination" in str(err.value)
    with pytest.raises(RefusedDestination):
        STRICT.check("nothing.example", [])


@pytest.mark.parametrize("text", ["", " ", ","])
def test_an_empty_allow_list_allows_nothing_internal(text: str) -> None:
    assert parse_allow(text) == ()


@pytest.mark.parametrize("text", ["localhost", "127.0.0.1/33", "10.0.0.1/8", "10/8", "fd00::/129"])
def test_a_bad_allow_list_entry_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="CIDR"):
        parse_allow(text)


def test_outbound_allow_is_a_setting_checked_at_start_up() -> None:
    default = Settings()
    assert default.outbound_policy == STRICT  # nothing internal is allowed by default
    assert not default.outbound_policy.allows("127.0.0.1")
    allowed = Settings(OUTBOUND_ALLOW="127.0.0.0/8, ::1/128")  # type: ignore[call-arg]
    assert allowed.outbound_policy.allows("127.0.0.2") and allowed.outbound_policy.allows("::1")
    with pytest.raises(ConfigurationError) as err:
        Settings(OUTBOUND_ALLOW="127.0.0.1/40")  # type: ignore[call-arg]
    assert err.value.field == "OUTBOUND_ALLOW"
    assert "'127.0.0.1/40'" in err.value.message
