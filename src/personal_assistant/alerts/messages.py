"""What an admin is told of an alert (pure): one message when it opens, one when it resolves."""

from __future__ import annotations

from datetime import datetime

from personal_assistant.alerts.rules import Firing, Rule, seconds_text
from personal_assistant.notifications.content import TITLE_LIMIT, trim
from personal_assistant.notifications.transports.base import Message

__all__ = ["opened", "resolved", "test"]


def opened(held: Firing, *, since: datetime, now: datetime) -> Message:
    rule = held.rule
    ago = seconds_text((now - since).total_seconds())
    return Message(
        title=trim(f"[{rule.severity}] {held.summary}", TITLE_LIMIT),
        body=(
            f"Alert {rule.name} opened at {_utc(now)}: {held.summary} ({held.value}; "
            f"first seen {_utc(since)}, {ago} ago). {held.action} "
            f"You will be told once more when it resolves (`pa alerts list`)."
        ),
    )


def resolved(rule: Rule, summary: str, *, opened_at: datetime | None, now: datetime) -> Message:
    lasted = (
        "" if opened_at is None else f" after {seconds_text((now - opened_at).total_seconds())}"
    )
    return Message(
        title=trim(f"[resolved] {summary}", TITLE_LIMIT),
        body=f'Alert {rule.name} resolved at {_utc(now)}{lasted}: "{summary}" no longer holds.',
    )


def test(now: datetime) -> Message:
    return Message(
        title="[test] Alerts reach you",
        body=(
            f"A test alert sent at {_utc(now)} by `pa alerts test`: the deployment's alerts "
            f"reach you through this channel."
        ),
    )


def _utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")
