"""REDIS_URL and LOG_LEVEL are checked when the settings are built: one error naming the field.

Before, ``REDIS_URL=http://...`` killed the worker and beat later with tracebacks in their logs,
and ``LOG_LEVEL=LOUD`` raised logging's ``ValueError`` from ``pa run``.
"""

from __future__ import annotations

import pytest

from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError


def _settings(**env: str) -> Settings:
    return Settings(**env)  # type: ignore[arg-type]  # aliases are the init names


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:s3cret@cache:6380/2", "REDIS://host/0"]
)
def test_redis_urls_are_accepted(url: str) -> None:
    assert _settings(REDIS_URL=url).broker_url == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://x", "(it starts with http://)"),
        ("amqp://guest:s3cret@host//", "(it starts with amqp://)"),
        ("127.0.0.1:6379", "URL"),
        ("localhost", "URL"),
    ],
)
def test_a_redis_url_of_another_scheme_is_refused(url: str, shown: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        _settings(REDIS_URL=url)
    assert err.value.field == "REDIS_URL"
    assert "redis://" in err.value.message and shown in err.value.message
    assert "s3cret" not in str(err.value)


def test_an_empty_redis_url_is_unset() -> None:
    assert _settings(REDIS_URL="").redis_url_raw is None


@pytest.mark.parametrize(("level", "stored"), [("info", "INFO"), (" Debug ", "DEBUG")])
def test_log_levels_are_upper_cased(level: str, stored: str) -> None:
    assert _settings(LOG_LEVEL=level).log_level == stored


@pytest.mark.parametrize("level", ["LOUD", "", "10"])
def test_an_unknown_log_level_is_refused(level: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        _settings(LOG_LEVEL=level)
    assert err.value.field == "LOG_LEVEL"
    assert repr(level) in err.value.message


def test_from_env_raises_the_field_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigurationError, match=r"^LOG_LEVEL: unknown level 'LOUD'"):
        Settings.from_env()
