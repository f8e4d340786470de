"""``pa channel add|list|test|remove`` and ``pa user quiet``, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import Pa, ready
from support.hook_server import HookServer

pytestmark = pytest.mark.e2e

SECRET = "s3cretTokenValue42"


@pytest.fixture
def pa(tmp_path: Path) -> Pa:
    return ready(tmp_path)


def test_channels_are_added_listed_tested_and_removed_with_urls_masked(pa: Pa) -> None:
    with HookServer() as hook:
        url = hook.url(f"/notify?token={SECRET}")
        added = pa.json("channel", "add", "hook", url, "--cap", "5")
        assert added["url"] == f"json://127.0.0.1:{hook.port}/notify?token=****"
        assert (added["kind"], added["status"], added["daily_cap"]) == ("webhook", "active", 5)
        human = pa.ok("channel", "list")
        assert "hook" in human and "token=****" in human and SECRET not in human
        assert pa.ok("channel", "test", "hook") == "delivered to hook\n"
        assert hook.received[0]["title"] == "Test from your personal assistant"
        task = pa.json("task", "add", "Digest", "--daily", "09:00", "--channel", "hook")
        assert task["notification_channels"] == ["hook"]
        removed = pa.json("channel", "remove", "hook")
        assert SECRET not in json.dumps(removed)
    assert pa.json("channel", "list") == []


def test_channel_errors_name_the_field(pa: Pa) -> None:
    bad = pa("channel", "add", "x", "http://example.org/hook")
    assert bad.returncode == 2 and bad.stderr.startswith("error: url: scheme http://")
    pa.ok("channel", "add", "x", "json://127.0.0.1:9/x")
    again = pa("channel", "add", "x", "json://127.0.0.1:9/y")
    assert again.returncode == 4 and "error: name: a channel named 'x' exists" in again.stderr
    missing = pa("channel", "test", "nope")
    assert missing.returncode == 3 and "error: name: no channel named 'nope'" in missing.stderr
    unknown = pa("task", "add", "t", "--daily", "09:00", "--channel", "pigeon")
    assert unknown.returncode == 2 and "notification_channels" in unknown.stderr


def test_a_failing_test_message_says_why(pa: Pa) -> None:
    with HookServer(statuses=(401,)) as hook:
        pa.ok("channel", "add", "hook", hook.url())
        done = pa("channel", "test", "hook", "--json")
    assert done.returncode == 6
    result = json.loads(done.stdout)
    assert (result["delivered"], result["permanent"]) == (False, True)
    assert "401" in result["reason"]


def test_quiet_hours_are_set_and_cleared(pa: Pa) -> None:
    assert pa.json("user", "quiet", "22:00", "07:00")["quiet_hours"] == ["22:00", "07:00"]
    assert "quiet hours for user 1: 22:00-07:00 (Europe/Paris)" in pa.ok(
        "user", "quiet", "22:00", "7:00"
    )
    assert pa.json("user", "quiet", "--off")["quiet_hours"] is None
    bad = pa("user", "quiet", "25:00", "07:00")
    assert bad.returncode == 2 and bad.stderr.startswith("error: start: must be a time HH:MM")
