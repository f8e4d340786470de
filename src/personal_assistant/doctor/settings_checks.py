"""Verdicts on the settings (pure): valid, no secret left at a well-known default, timeouts
that fit inside each other."""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

from personal_assistant.config import FERNET_KEY_HINT, Settings
from personal_assistant.doctor.report import Check, failed, passed, warned
from personal_assistant.health.heartbeat import STALE_AFTER_BEATS

#: Passwords that ship as examples or defaults somewhere, refused outside loopback.
DEFAULT_PASSWORDS = frozenset({"postgres", "password", "changeme", "secret", "guest", "admin"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", ""})


def valid(settings: Settings) -> Check:
    described = ", ".join(f"{k} {v}" for k, v in settings.describe().items() if k != "logs")
    return passed("config.valid", "The settings are valid", described)


def _loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:  # a name
        return False


def _default_password(name: str, url: str) -> str | None:
    try:
        parts = urlsplit(url)
        password, host = parts.password, parts.hostname or ""
    except ValueError:  # urllib cannot split it (an unencoded "[" in a password): no default
        return None
    if password in DEFAULT_PASSWORDS and not _loopback(host):
        return f"{name} uses the well-known password {password!r} on {host}"
    return None


def secrets(settings: Settings) -> Check:
    title = "No secret left at a default"
    found = [
        problem
        for name, url in (
            ("DATABASE_URL", settings.database_url),
            ("the broker URL", settings.broker_url),
            ("the result backend URL", settings.result_backend),
        )
        if (problem := _default_password(name, url))
    ]
    if found:
        return failed(
            "config.secrets",
            title,
            "; ".join(found),
            "set a strong password on the server and in the URL (or its *_FILE secret)",
        )
    if settings.channel_keys_raw is None and not settings.embedded:
        return warned(
            "config.secrets",
            title,
            "CHANNEL_KEYS is unset with a database server: no channel but in-app can be "
            "added, tested or delivered (deliveries wait for a worker with the key)",
            "set CHANNEL_KEYS (or CHANNEL_KEYS_FILE) to the same Fernet key in every process; "
            f"make one with {FERNET_KEY_HINT}",
        )
    keys = "CHANNEL_KEYS set" if settings.channel_keys_raw is not None else "var/channel.key"
    return passed("config.secrets", title, f"no well-known password in any URL; {keys}")


def timeouts(settings: Settings) -> Check:
    """A run, its lease and its time limit all end before the broker redelivers its message."""
    title = "Timeouts fit inside each other"
    lease = STALE_AFTER_BEATS * settings.heartbeat_interval_seconds + settings.lease_margin_seconds
    hard_limit = settings.run_timeout_seconds + 30
    visibility = settings.visibility_timeout_seconds
    problems = []
    if settings.run_timeout_seconds + settings.lease_margin_seconds + 30 > visibility:
        problems.append(
            f"BROKER_VISIBILITY_TIMEOUT {visibility} s <= RUN_TIMEOUT + LEASE_MARGIN + 30 s"
        )
    if hard_limit >= visibility:
        problems.append(f"the hard time limit {hard_limit:.0f} s >= BROKER_VISIBILITY_TIMEOUT")
    if settings.agent_timeout_seconds > settings.run_timeout_seconds:
        problems.append(
            f"AGENT_TIMEOUT {settings.agent_timeout_seconds:.0f} s > RUN_TIMEOUT "
            f"{settings.run_timeout_seconds:.0f} s: one agent call outlives its run"
        )
    if lease >= visibility:
        problems.append(f"a run's lease ({lease:.0f} s) >= BROKER_VISIBILITY_TIMEOUT")
    if problems:
        return failed(
            "config.timeouts",
            title,
            "; ".join(problems),
            "raise BROKER_VISIBILITY_TIMEOUT or lower RUN_TIMEOUT / AGENT_TIMEOUT",
        )
    return passed(
        "config.timeouts",
        title,
        f"AGENT_TIMEOUT {settings.agent_timeout_seconds:.0f} s <= RUN_TIMEOUT "
        f"{settings.run_timeout_seconds:.0f} s; time limit {hard_limit:.0f} s, lease "
        f"{lease:.0f} s < BROKER_VISIBILITY_TIMEOUT {visibility} s",
    )


def settings_checks(settings: Settings) -> list[Check]:
    return [valid(settings), secrets(settings), timeouts(settings)]
