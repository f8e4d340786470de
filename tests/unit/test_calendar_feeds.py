"""What a calendar subscription may be, and how its URL is shown: masked, always."""

from __future__ import annotations

import pytest

from personal_assistant.calendars.store import (
    FeedSpec,
    feed_url,
    mask_feed_url,
    scrub,
    validate,
)
from personal_assistant.errors import ValidationError

TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://cal.example/team.ics", "https://cal.example/team.ics"),
        (
            f"https://calendar.google.example/calendar/ical/ada/private-{TOKEN}/basic.ics",
            "https://calendar.google.example/calendar/ical/ada/****/basic.ics",
        ),
        (
            f"https://cal.example/feed.ics?token={TOKEN}&x=1",
            "https://cal.example/feed.ics?token=****&x=****",
        ),
        (f"https://cal.example/feed.ics?{TOKEN}", "https://cal.example/feed.ics?****"),
        ("https://ada:s3cretpw@cal.example:8443/dav/", "https://ada:****@cal.example:8443/dav/"),
        (
            "http://127.0.0.1:8000/user/abcdef0123456789/x.ics",
            "http://127.0.0.1:8000/user/****/x.ics",
        ),
        ("not a url", "****"),
    ],
)
def test_mask_feed_url(url: str, masked: str) -> None:
    assert mask_feed_url(url) == masked


def test_scrub_removes_the_url_and_its_secrets_from_text() -> None:
    url = f"https://ada:s3cretpw@cal.example/feed.ics?token={TOKEN}"
    text = f"GET {url} failed; token {TOKEN} refused for s3cretpw"
    cleaned = scrub(text, url)
    assert TOKEN not in cleaned and "s3cretpw" not in cleaned
    assert "https://ada:****@cal.example/feed.ics?token=****" in cleaned


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://cal.example/a.ics", "https://cal.example/a.ics"),
        ("  http://cal.example/a.ics ", "http://cal.example/a.ics"),
        ("webcal://cal.example/a.ics", "https://cal.example/a.ics"),
        ("WEBCALS://cal.example/a.ics", "https://cal.example/a.ics"),
    ],
)
def test_feed_url_accepts_http_and_maps_webcal(url: str, normalised: str) -> None:
    assert feed_url(url) == normalised


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "must not be empty"),
        ("ftp://cal.example/a.ics", "scheme ftp:// is not supported"),
        ("cal.example/a.ics", "scheme (no scheme) is not supported"),
        ("https:///a.ics", "has no host"),
        ("https://cal.example:99999/a.ics", "invalid host or port"),
        ("https://cal.example/a b.ics", "must not contain spaces"),
        ("https://cal.example/" + "a" * 2100, "at most 2048 characters"),
    ],
)
def test_a_bad_url_names_the_field_without_repeating_it(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        feed_url(url)
    assert caught.value.field == "url" and reason in caught.value.message
    assert "cal.example" not in caught.value.message


def test_validate_defaults_and_repr() -> None:
    spec = validate("work", f"webcal://cal.example/x.ics?token={TOKEN}")
    assert spec == FeedSpec(
        "work", f"https://cal.example/x.ics?token={TOKEN}", 15, 30, 60, ("in_app",)
    )
    assert TOKEN not in repr(spec)


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"name": "Work Calendar"}, "name", "lower-case letters"),
        ({"name": "x" * 49}, "name", "at most 48"),
        ({"name": " "}, "name", "must not be empty"),
        ({"lead_minutes": -1}, "lead_minutes", "from 0 to 10080"),
        ({"lead_minutes": True}, "lead_minutes", "whole number"),
        ({"horizon_days": 0}, "horizon_days", "from 1 to 366"),
        ({"horizon_days": 1, "lead_minutes": 1440}, "lead_minutes", "shorter than the horizon"),
        ({"interval_minutes": 4}, "interval_minutes", "from 5 to 10080"),
        ({"channels": ["Bad Name"]}, "channels", "lower-case letters"),
        ({"channels": []}, "channels", "at least one channel"),
    ],
)
def test_validate_names_the_field(changes: dict[str, object], field: str, reason: str) -> None:
    arguments: dict[str, object] = {"name": "work", "url": "https://cal.example/x.ics", **changes}
    name, url = arguments.pop("name"), arguments.pop("url")
    with pytest.raises(ValidationError) as caught:
        validate(name, url, **arguments)  # type: ignore[arg-type]
    assert (caught.value.field, reason in caught.value.message) == (field, True)
