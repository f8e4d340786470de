"""One redaction for every URL and credential: URLs shown, error texts and every log record.

A table of URLs (database, Redis, private calendar feeds, Apprise channels of several kinds)
with their masked forms; free text with URLs, ``Bearer`` tokens and ``password=`` pairs; the
logging filter on records of our own and of libraries (arguments, exceptions); and masking
that is idempotent, so text already masked comes out unchanged.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from personal_assistant import logsetup, redaction
from personal_assistant.calendars.store import mask_feed_url
from personal_assistant.config import Settings
from personal_assistant.notifications.channels import mask_apprise_url
from personal_assistant.redaction import MASK, RedactingFilter, mask_url, redact

HEX = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRET = "s3cretTokenValue42"

URLS = [
    # database and broker URLs: the password, in the userinfo or the query
    ("postgresql://pa:hunter2@db:5432/pa", "postgresql://pa:****@db:5432/pa"),
    (
        f"postgresql://pa@db/pa?password={SECRET}&sslmode=require",
        "postgresql://pa@db/pa?password=****&sslmode=require",
    ),
    (
        f"postgresql+psycopg://pa:{SECRET}@db/pa?options=-c%20x%3D1",
        "postgresql+psycopg://pa:****@db/pa?options=-c%20x%3D1",
    ),
    ("redis://:s3cret@cache:6379/0", "redis://:****@cache:6379/0"),
    (
        f"rediss://default:{SECRET}@cache:6380/1?ssl_cert_reqs=CERT_NONE",
        "rediss://default:****@cache:6380/1?ssl_cert_reqs=CERT_NONE",
    ),
    (f"redis://cache:6379/0?password={SECRET}", "redis://cache:6379/0?password=****"),
    ("amqp://guest:guest@rabbit:5672//", "amqp://guest:****@rabbit:5672//"),
    ("redis://cache:6379/0", "redis://cache:6379/0"),
    # file paths are not tokens, however long their names
    (
        "sqlite:////tmp/pytest-7/test_a_very_long_test_name_for_a_path_segment0/var/pa.db",
        "sqlite:////tmp/pytest-7/test_a_very_long_test_name_for_a_path_segment0/var/pa.db",
    ),
    (
        "sqla+sqlite:////srv/pa/var/broker.db",
        "sqla+sqlite:////srv/pa/var/broker.db",
    ),
    # HTTP: secret-looking query parameters, private-feed path tokens, the userinfo
    (
        f"https://cal.example/feed.ics?token={SECRET}&x=1",
        "https://cal.example/feed.ics?token=****&x=1",
    ),
    (
        f"https://api.example/v1?api-key={SECRET}&access_token={SECRET}&sig=abc&alt=json",
        "https://api.example/v1?api-key=****&access_token=****&sig=****&alt=json",
    ),
    (
        f"https://calendar.google.com/calendar/ical/ada%40example.org/private-{HEX}/basic.ics",
        "https://calendar.google.com/calendar/ical/ada%40example.org/****/basic.ics",
    ),
    (
        "https://calendar.example/ical/private-b7e9a1/basic.ics",
        "https://calendar.example/ical/****/basic.ics",
    ),
    (
        f"webcal://p52-caldav.icloud.example/published/2/{HEX}{HEX}",
        "webcal://p52-caldav.icloud.example/published/2/****",
    ),
    (f"https://cal.example/feed.ics?{HEX}", "https://cal.example/feed.ics?****"),
    ("https://ada:pw@cal.example:8443/dav/", "https://ada:****@cal.example:8443/dav/"),
    (f"https://{HEX}@sentry.example/42", "https://****@sentry.example/42"),
    ("https://lou@cal.example/team.ics", "https://lou@cal.example/team.ics"),
    ("https://cal.example/team.ics", "https://cal.example/team.ics"),
    # Apprise: e-mail and webhooks keep their host; other services are all credentials
    (
        "mailto://lou:hunter2pass@smtp.example.org:587?from=pa@example.org",
        "mailto://lou:****@smtp.example.org:587?from=pa@example.org",
    ),
    (
        "mailtos://smtp.example.org?user=lou&pass=hunter2pass&to=ada@example.org",
        "mailtos://smtp.example.org?user=lou&pass=****&to=ada@example.org",
    ),
    ("json://user:pass@hooks.example/notify", "json://user:****@hooks.example/notify"),
    ("json://127.0.0.1:8080/hook?token=abcdef123456", "json://127.0.0.1:8080/hook?token=****"),
    ("jsons://hooks.example.org/notify", "jsons://hooks.example.org/notify"),
    ("tgram://123456789:AAbbCCddEE/4242", "tgram://****:****/****"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack://****/****/****"),
    (
        "twilio://AC123456:authtoken99@+15551234567/+15557654321",
        "twilio://****:****@****/****",
    ),
    ("ntfy://my-secret-topic?priority=high", "ntfy://****?priority=high"),
    # Apprise's own "privacy" form shows the first and last characters: masked all the same
    ("mailto://lou:h...s@smtp.example.org", "mailto://lou:****@smtp.example.org"),
    ("not a url", MASK),
    ("", MASK),
]


@pytest.mark.parametrize(("url", "masked"), URLS)
def test_mask_url(url: str, masked: str) -> None:
    assert redaction.mask_url(url) == masked


@pytest.mark.parametrize(("url", "masked"), URLS)
def test_masking_is_idempotent(url: str, masked: str) -> None:
    assert redaction.mask_url(masked) == masked
    assert redact(redact(url)) == redact(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://pa:hunter2@db:5432/pa",
        f"redis://cache:6379/0?password={SECRET}",
        f"https://ada:pw@cal.example/ical/private-{HEX}/basic.ics?token={SECRET}",
        "mailto://lou:hunter2pass@smtp.example.org:587",
        "tgram://123456789:AAbbCCddEE/4242",
    ],
)
def test_the_shown_forms_all_delegate_to_one_masking(url: str) -> None:
    assert mask_url(url) == redaction.mask_url(url)
    assert mask_apprise_url(url) == redaction.mask_url(url)
    assert mask_feed_url(url) == redaction.mask_url(url, every_query_value=True)


def test_a_feed_hides_every_query_value() -> None:
    url = f"https://cal.example/feed.ics?token={SECRET}&k=8f3a9b"
    assert redaction.mask_url(url, every_query_value=True) == (
        "https://cal.example/feed.ics?token=****&k=****"
    )


TEXTS = [
    (
        f"HTTP Request: GET http://127.0.0.1:8000/ical/private-{HEX}/basic.ics?token={SECRET} "
        '"HTTP/1.1 200 OK"',
        'HTTP Request: GET http://127.0.0.1:8000/ical/****/basic.ics?token=**** "HTTP/1.1 200 OK"',
    ),
    (
        f"cannot use postgresql://pa@db/pa?password={SECRET}.",
        "cannot use postgresql://pa@db/pa?password=****.",
    ),
    (
        f"{{'url': 'redis://:{SECRET}@cache:6379/0', 'n': 1}}",
        "{'url': 'redis://:****@cache:6379/0', 'n': 1}",
    ),
    (f"Authorization: Bearer {SECRET}", "Authorization: Bearer ****"),
    (f"headers={{'Authorization': 'Bearer {SECRET}'}}", "headers={'Authorization': 'Bearer ****'}"),
    (f"authorization: Basic {SECRET}=", "authorization: Basic ****"),
    (f"sent with bearer {SECRET}", "sent with bearer ****"),
    (f"host=db user=pa password={SECRET} dbname=pa", "host=db user=pa password=**** dbname=pa"),
    (f'{{"api_key": "{SECRET}", "model": "x"}}', '{"api_key": "****", "model": "x"}'),
    (f"client_secret={SECRET}&grant=1", "client_secret=****&grant=1"),
    (
        "Loaded E-Mail URL: mailto://lou:h...s@127.0.0.1:2525/?from=pa%40example.org",
        "Loaded E-Mail URL: mailto://lou:****@127.0.0.1:2525/?from=pa%40example.org",
    ),
    # nothing secret: unchanged
    (
        "event=calendar_synced feed_id=3 created=2 max_tokens=800 routing_key=ai_tasks",
        "event=calendar_synced feed_id=3 created=2 max_tokens=800 routing_key=ai_tasks",
    ),
    (
        "Connected to redis://:**@127.0.0.1:6379/0",
        "Connected to redis://:**@127.0.0.1:6379/0",
    ),
    (
        "Connected to personal_assistant.workers.redis_broker:Transport://:**@127.0.0.1:6379/0",
        None,
    ),
    ("password authentication failed for user pa", "password authentication failed for user pa"),
    ("Task sync_calendar[8c1e0f3a-5b7d-4c2e-9f10-3a2b1c0d9e8f] received", None),
]


@pytest.mark.parametrize(("text", "redacted"), TEXTS)
def test_redact_masks_urls_and_credentials_in_text(text: str, redacted: str | None) -> None:
    expected = text if redacted is None else redacted
    assert redact(text) == expected
    assert redact(expected) == expected


def test_scrub_removes_a_known_urls_secrets_wherever_they_appear() -> None:
    url = f"https://ada:s3cretpw@cal.example/ical/private-{HEX}/basic.ics?token={SECRET}"
    text = f"GET {url} failed; private-{HEX} and {SECRET} refused for s3cretpw"
    cleaned = redaction.scrub(text, url)
    for secret in (HEX, SECRET, "s3cretpw"):
        assert secret not in cleaned
    assert "https://ada:****@cal.example/ical/****/basic.ics?token=****" in cleaned


# --- the logging filter ------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redaction.library")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


def test_the_filter_redacts_message_args_and_exceptions(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    url = f"https://cal.example/ical/private-{HEX}/basic.ics?token={SECRET}"
    logger.info("HTTP Request: %s %s %r", "GET", url, {"auth": f"Bearer {SECRET}"})
    logger.info(f"fetching {url}")  # a library that formats its own messages
    logger.info("%(what)s at %(where)s", {"what": "sync", "where": url})
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        logger.exception("failed with password=%s", SECRET)
    logger.info("stack", stack_info=True, extra={"note": url})
    out = stream.getvalue()
    assert HEX not in out and SECRET not in out
    assert out.count("https://cal.example/ical/****/basic.ics?token=****") == 4
    assert "ConnectionError: cannot reach https://cal.example/ical/****" in out


def test_logsetup_installs_the_filter_on_every_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PA_LOG_FILE", str(tmp_path / "logs" / "core.log"))  # restored after
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    quieted = {name: logging.getLogger(name).level for name in ("sqlalchemy.engine", "httpx")}
    quieted |= {name: logging.getLogger(name).level for name in ("kombu", "amqp")}
    try:
        for handler in saved:
            root.removeHandler(handler)
        settings = Settings(PA_HOME=str(tmp_path))  # type: ignore[call-arg]  # alias
        logsetup.configure(settings)
        assert root.handlers
        assert all(_has_filter(h) for h in root.handlers)
        extra = logging.StreamHandler(io.StringIO())
        root.addHandler(extra)  # as Celery adds its own handler before after_setup_logger
        logsetup.protect(root)
        assert _has_filter(extra)
        logsetup.protect(root)
        assert sum(isinstance(f, RedactingFilter) for f in extra.filters) == 1
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in quieted.items():
            logging.getLogger(name).setLevel(old)


def _has_filter(handler: logging.Handler) -> bool:
    return any(isinstance(f, RedactingFilter) for f in handler.filters)


# --- settings as shown -------------------------------------------------------------------------


def test_settings_show_every_url_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://pa@db/pa?password={SECRET}")
    monkeypatch.setenv("REDIS_URL", f"redis://cache:6379/0?password={SECRET}")
    monkeypatch.setenv("AGENT", "openai")
    monkeypatch.setenv("AGENT_BASE_URL", f"https://key:{SECRET}@llm.example/v1?api-key={SECRET}")
    settings = Settings.from_env()
    shown = repr(settings) + str(settings) + str(settings.describe())
    assert SECRET not in shown
    assert settings.describe()["database"] == "postgresql://pa@db/pa?password=****"
    assert settings.describe()["broker"] == "redis://cache:6379/0?password=****"
    assert "https://key:****@llm.example/v1?api-key=****" in settings.describe()["agent"]
