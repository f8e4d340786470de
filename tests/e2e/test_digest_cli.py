"""``pa user digest``, run as a user runs it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from support.cli import Pa, ready

pytestmark = pytest.mark.e2e

SECRET = "s3cretPassWord42"
ZONE = "America/Los_Angeles"


@pytest.fixture
def pa(tmp_path: Path) -> Pa:
    return ready(tmp_path, ZONE)


def test_a_digest_is_set_shown_moved_to_a_channel_and_turned_off(pa: Pa) -> None:
    assert pa.ok("user", "digest") == (
        "no daily digest for user 1: set one with `pa user digest --at HH:MM`\n"
    )
    before = datetime.now(UTC)
    shown = pa.json("user", "digest", "--at", "20:00")
    assert (shown["user_id"], shown["timezone"]) == (1, ZONE)
    assert (shown["digest"]["at"], shown["digest"]["channel"]) == ("20:00", "in_app")
    next_at = datetime.fromisoformat(shown["digest"]["next_at"])
    assert next_at.astimezone(ZoneInfo(ZONE)).time() == time(20, 0)
    assert before < next_at <= before + timedelta(hours=25)  # 25: a fall-back day

    pa.ok("channel", "add", "mail", f"mailtos://ada:{SECRET}@mail.example.org?to=ada@example.org")
    human = pa.ok("user", "digest", "--channel", "mail")
    assert human.startswith(f"daily digest for user 1 at 20:00 ({ZONE}) to mail; next: ")
    assert human.rstrip().endswith(f" 20:00 {ZONE})")
    assert SECRET not in human
    assert pa.json("user", "digest")["digest"]["channel"] == "mail"

    assert pa.ok("user", "list").splitlines()[1].split()[-4:] == ["20:00", "to", "mail", "no"]
    (listed,) = pa.json("user", "list")
    assert listed["digest"] == {"at": "20:00", "channel": "mail", "next_at": next_at.isoformat()}

    moved = pa.json("user", "digest", "--at", "7:05")
    assert moved["digest"]["at"] == "07:05" and moved["digest"]["channel"] == "mail"

    assert pa.ok("user", "digest", "--off") == "no daily digest for user 1\n"
    assert pa.json("user", "digest")["digest"] is None
    assert pa.json("user", "list")[0]["digest"] is None


def test_bad_digest_input_names_the_field(pa: Pa) -> None:
    assert pa.fails(2, "user", "digest", "--at", "25:00").startswith(
        "error: at: must be a time HH:MM, got '25:00'"
    )
    assert pa.fails(2, "user", "digest", "--at", "20:00", "--channel", "pigeon").startswith(
        "error: channel: no channel named 'pigeon' (yours: in_app; add one with "
        "`pa channel add pigeon URL`)"
    )
    assert pa.fails(2, "user", "digest", "--at", "20:00", "--channel", "Bad Name").startswith(
        "error: channel: "
    )
    assert pa.fails(2, "user", "digest", "--off", "--at", "20:00").startswith("error: --off: ")
    assert pa.fails(2, "user", "digest", "--channel", "in_app").startswith(
        "error: at: give the time the digest goes out: --at HH:MM"
    )
    assert pa.fails(3, "user", "digest", "--at", "20:00", "--user", "9").startswith(
        "error: user_id: user 9 not found"
    )
    assert pa.json("user", "digest")["digest"] is None  # nothing was changed
