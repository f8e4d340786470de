"""The pure rules of notification delivery: masking, channel validation, message content,
quiet hours and daily caps (DST included), and the classification of Apprise failures."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.errors import ValidationError
from personal_assistant.notifications.channels import (
    mask_apprise_url,
    scrub,
)
from personal_assistant.notifications.content import render
from personal_assistant.notifications.policy import (
    QuietHours,
    day_start,
    next_day_start,
    quiet_until,
    release_at,
)
from personal_assistant.notifications.transports.apprise import capture_apprise_debug, classify
from personal_assistant.notifications.transports.apprise_urls import validate
from personal_assistant.notifications.transports.base import Message

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]  # year, month, day... as ints


MASKS = [
    (
        "mailto://lou:hunter2pass@smtp.example.org:587?from=pa@example.org",
        "mailto://lou:****@smtp.example.org:587?from=pa@example.org",
    ),
    ("json://127.0.0.1:8080/hook?token=abcdef123456", "json://127.0.0.1:8080/hook?token=****"),
    ("jsons://hooks.example.org/notify", "jsons://hooks.example.org/notify"),
    (
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "slack://****/****/****",
    ),
    ("tgram://123456789:AAbbCCddEE/4242", "tgram://****:****/****"),
    (
        "twilio://AC123456:authtoken99@+15551234567/+15557654321",
        "twilio://****:****@****/****",
    ),
    ("ntfy://my-secret-topic?priority=high", "ntfy://****?priority=high"),
    ("ntfy://abc", "ntfy://****"),
    ("not a url", "****"),
]


@pytest.mark.parametrize(("url", "masked"), MASKS)
def test_mask_apprise_url(url: str, masked: str) -> None:
    assert mask_apprise_url(url) == masked


def test_scrub_removes_the_secrets_of_a_url_from_a_message() -> None:
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    text = "POST https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ: 404"
    assert scrub(text, url) == "POST https://hooks.slack.com/services/****/****/****: 404"
    assert scrub("login failed for lou:hunter2pass", "mailto://lou:hunter2pass@h") == (
        "login failed for lou:****"
    )


def test_a_channel_repr_never_shows_its_secret() -> None:
    spec = validate("work-mail", "mailtos://lou:hunter2pass@example.org", 3)
    assert (spec.kind, spec.daily_cap) == ("email", 3)
    assert "hunter2pass" not in repr(spec)


BAD_CHANNELS: list[tuple[str, str, object, str, str]] = [
    ("Work", "json://h/p", None, "name", "lower-case"),
    ("a" * 25, "json://h/p", None, "name", "24"),
    ("in_app", "json://h/p", None, "name", "built in"),
    ("x", "", None, "url", "empty"),
    ("x", "http://example.org/hook", None, "url", "http://"),
    ("x", "example.org", None, "url", "no scheme"),
    ("x", "json://h/p q", None, "url", "spaces"),
    ("x", "slack://", None, "url", "Apprise does not accept"),
    ("x", "tgram://not-a-token", None, "url", "Apprise does not accept"),
    ("x", "json://h/p", 0, "cap", "1 to"),
    ("x", "json://h/p", True, "cap", "1 to"),
]


@pytest.mark.parametrize(("name", "url", "cap", "field", "words"), BAD_CHANNELS)
def test_bad_channels_name_the_field(
    name: str, url: str, cap: object, field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as err:
        validate(name, url, cap)
    assert err.value.field == field
    assert words in err.value.message


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("mailto://u:p@example.org", "email"),
        ("mailtos://u:p@example.org", "email"),
        ("json://127.0.0.1:9/x", "webhook"),
        ("form://example.org/x", "webhook"),
        ("xml://example.org/x", "webhook"),
        ("twilio://AC123456:authtoken99@+15551234567/+15557654321", "sms"),
        ("discord://1234567890/abcdefABCDEF", "chat"),
        ("ntfy://topic", "chat"),
    ],
)
def test_supported_schemes_give_the_kind(url: str, kind: str) -> None:
    assert validate("c", url).kind == kind


LONG = " ".join(["word"] * 1000)  # 4999 characters
RENDERS: list[tuple[str, str, str, Message]] = [
    ("email", "Digest", "short answer", Message("Digest", "short answer")),
    ("sms", "Plants", "water them", Message("", "Plants: water them")),
    (
        "webhook",
        "Failed: Digest",
        "The task could not be completed: boom",
        Message("Failed: Digest", "The task could not be completed: boom"),
    ),
]


@pytest.mark.parametrize(("kind", "title", "text", "expected"), RENDERS)
def test_render_short_messages_unchanged(
    kind: str, title: str, text: str, expected: Message
) -> None:
    assert render(kind, title, text, task_id=7, run_id=42) == expected


@pytest.mark.parametrize(("kind", "limit"), [("sms", 160), ("chat", 2000), ("email", 20_000)])
def test_render_trims_at_a_word_with_a_pointer(kind: str, limit: int) -> None:
    text = LONG * 5
    message = render(kind, "Digest", text, task_id=7, run_id=42)
    assert len(message.body) <= limit
    assert message.body.endswith("word… (more: pa runs --task 7, run 42)")
    if kind == "sms":
        assert message.title == "" and message.body.startswith("Digest: word word")


def test_render_at_exactly_the_limit_is_not_trimmed() -> None:
    text = "x" * 2000
    assert render("chat", "t", text, task_id=1, run_id=1).body == text


QUIET_NIGHT = QuietHours(time(22, 0), time(7, 0))
QUIET_DAY = QuietHours(time(12, 0), time(14, 0))
QUIET_CASES: list[tuple[str, datetime, ZoneInfo, QuietHours | None, datetime | None]] = [
    ("no quiet hours", utc(2026, 1, 10, 23, 0), PARIS, None, None),
    ("empty window", utc(2026, 1, 10, 23, 0), PARIS, QuietHours(time(8), time(8)), None),
    ("same-day window, inside", utc(2026, 1, 10, 11, 30), PARIS, QUIET_DAY, utc(2026, 1, 10, 13)),
    ("same-day window, at its end", utc(2026, 1, 10, 13, 0), PARIS, QUIET_DAY, None),
    (
        "same-day window, at its start",
        utc(2026, 1, 10, 11, 0),
        PARIS,
        QUIET_DAY,
        utc(2026, 1, 10, 13),
    ),
    (
        "across midnight, before it",
        utc(2026, 1, 10, 22, 30),
        PARIS,
        QUIET_NIGHT,
        utc(2026, 1, 11, 6),
    ),
    ("across midnight, after it", utc(2026, 1, 11, 1, 0), PARIS, QUIET_NIGHT, utc(2026, 1, 11, 6)),
    ("across midnight, outside", utc(2026, 1, 11, 9, 0), PARIS, QUIET_NIGHT, None),
    # The night clocks spring forward (02:00 -> 03:00 on 29 March): 07:00 CEST is 05:00 UTC.
    ("spring-forward night", utc(2026, 3, 28, 22, 0), PARIS, QUIET_NIGHT, utc(2026, 3, 29, 5)),
    # A window ending inside the gap ends at the transition instant, 03:00 CEST.
    (
        "end inside the gap",
        utc(2026, 3, 29, 0, 30),
        PARIS,
        QuietHours(time(1, 0), time(2, 30)),
        utc(2026, 3, 29, 1, 0),
    ),
    # Fall back (03:00 -> 02:00 on 25 October): 07:00 CET is 06:00 UTC.
    ("fall-back night", utc(2026, 10, 24, 21, 0), PARIS, QUIET_NIGHT, utc(2026, 10, 25, 6)),
    # 02:15 the second time (00:15 UTC); the window's end, the first 02:30, has passed.
    (
        "repeated hour after the end's first occurrence",
        utc(2026, 10, 25, 1, 15),
        PARIS,
        QuietHours(time(1, 0), time(2, 30)),
        None,
    ),
    ("New York evening", utc(2026, 7, 1, 3, 0), NEW_YORK, QUIET_NIGHT, utc(2026, 7, 1, 11)),
]


@pytest.mark.parametrize(
    ("now", "zone", "quiet", "expected"),
    [case[1:] for case in QUIET_CASES],
    ids=[case[0] for case in QUIET_CASES],
)
def test_quiet_until(
    now: datetime, zone: ZoneInfo, quiet: QuietHours | None, expected: datetime | None
) -> None:
    assert quiet_until(now, zone, quiet) == expected


def test_local_days_across_dst() -> None:
    # 8 March 2026, New York springs forward: the day is 23 hours long.
    now = utc(2026, 3, 8, 20, 0)
    assert day_start(now, NEW_YORK) == utc(2026, 3, 8, 5, 0)
    assert next_day_start(now, NEW_YORK) == utc(2026, 3, 9, 4, 0)
    # Just before local midnight in Paris is already the next UTC day's evening... and back.
    assert next_day_start(utc(2026, 1, 10, 22, 59), PARIS) == utc(2026, 1, 10, 23, 0)


RELEASE_CASES: list[tuple[str, dict[str, object], datetime | None]] = [
    ("nothing holds it", {}, None),
    ("under the cap", {"cap": 3, "sent_today": 2}, None),
    ("at the cap: next local day", {"cap": 3, "sent_today": 3}, utc(2026, 1, 10, 23, 0)),
    (
        "at the cap, and the next day starts in quiet hours",
        {"cap": 1, "sent_today": 1, "quiet": QUIET_NIGHT},
        utc(2026, 1, 11, 6, 0),
    ),
    ("quiet hours only", {"quiet": QuietHours(time(9), time(12))}, utc(2026, 1, 10, 11, 0)),
    ("under the cap with sends under way", {"cap": 3, "sent_today": 1, "sending": 1}, None),
    (
        "sends under way fill the cap: counted again after recheck",
        {"cap": 3, "sent_today": 1, "sending": 2, "recheck": timedelta(minutes=2)},
        utc(2026, 1, 10, 9, 2),
    ),
    (
        "sends under way fill the cap, and quiet hours begin before the recheck",
        {"cap": 1, "sending": 1, "quiet": QuietHours(time(10, 1), time(11))},
        utc(2026, 1, 10, 10, 0),
    ),
    (
        "at the cap whatever is under way",
        {"cap": 2, "sent_today": 2, "sending": 5},
        utc(2026, 1, 10, 23, 0),
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [case[1:] for case in RELEASE_CASES],
    ids=[case[0] for case in RELEASE_CASES],
)
def test_release_at(kwargs: dict[str, object], expected: datetime | None) -> None:
    now = utc(2026, 1, 10, 9, 0)  # 10:00 in Paris
    assert release_at(now, PARIS, **kwargs) == expected  # type: ignore[arg-type]  # table


def test_release_at_refuses_a_recheck_that_would_not_wait() -> None:
    with pytest.raises(ValueError, match="recheck"):
        release_at(utc(2026, 1, 10, 9, 0), PARIS, cap=1, sending=1, recheck=timedelta(0))


CLASSIFY_CASES: list[tuple[str, list[tuple[str, str]], bool, str]] = [
    ("TIMEOUT", [], False, "did not answer in time"),
    (
        "FAILURE",
        [("WARNING", "Failed to send JSON POST notification: Unauthorized, error=401.")],
        True,
        "error=401",
    ),
    ("FAILURE", [("WARNING", "Failed to send: Not Found, error=404.")], True, "404"),
    ("FAILURE", [("WARNING", "Failed to send: Too Many Requests, error=429.")], False, "429"),
    ("FAILURE", [("WARNING", "Failed to send: Internal server error., error=500.")], False, "500"),
    (
        "FAILURE",
        [
            ("WARNING", 'Connection error while submitting email to "smtp.example.org"'),
            ("DEBUG", "Socket Exception: (535, b'5.7.8 Authentication credentials invalid')"),
        ],
        True,
        "535",
    ),
    (
        "FAILURE",
        [("WARNING", "A Connection error occurred sending JSON notification to 127.0.0.1.")],
        False,
        "Connection error",
    ),
    ("FAILURE", [], False, "Apprise reported FAILURE"),
]


@pytest.mark.parametrize(("status", "lines", "permanent", "words"), CLASSIFY_CASES)
def test_classify(status: str, lines: list[tuple[str, str]], permanent: bool, words: str) -> None:
    reason, is_permanent = classify(status, lines)
    assert is_permanent is permanent
    assert words in reason


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_apprise_debug_reaches_a_call_capture_but_not_the_process_log() -> None:
    # Own handlers, not caplog: pytest attaches caplog to non-propagating loggers directly.
    capture_apprise_debug()
    capture_apprise_debug()  # idempotent
    apprise_log, root = logging.getLogger("apprise"), logging.getLogger()
    call_capture, process_log = _Recorder(), _Recorder()
    apprise_log.addHandler(call_capture)
    root.addHandler(process_log)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        apprise_log.debug("Socket Exception: (535, b'refused')")
        apprise_log.warning("Connection error while submitting email")
    finally:
        apprise_log.removeHandler(call_capture)
        root.removeHandler(process_log)
        root.setLevel(level)
    assert call_capture.messages == [
        "Socket Exception: (535, b'refused')",
        "Connection error while submitting email",
    ]
    assert process_log.messages == ["Connection error while submitting email"]
