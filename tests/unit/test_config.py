from __future__ import annotations

import pytest

from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError
from personal_assistant.redaction import mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:secret@host:6379/0", "redis://:****@host:6379/0"),
        ("rediss://user:secret@host:6380/1", "rediss://user:****@host:6380/1"),
        ("postgresql://pa:pw@db/pa", "postgresql://pa:****@db/pa"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("sqlite:////tmp/pa.db", "sqlite:////tmp/pa.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_embedded_default_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PA_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.embedded
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'pa.db'}"
    assert settings.broker_url.startswith("sqla+sqlite:///")
    assert settings.result_backend.startswith("db+sqlite:///")


def test_broker_and_backend_fall_back_to_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "rediss://:s3cret@cache:6380/2")
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)
    settings = Settings.from_env()
    assert settings.broker_url == "rediss://:s3cret@cache:6380/2"
    assert settings.result_backend == "rediss://:s3cret@cache:6380/2"
    shown = repr(settings) + str(settings.describe())
    assert "s3cret" not in shown
    assert settings.describe()["broker"] == "rediss://:****@cache:6380/2"


def test_secret_file_variant(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "db_url"
    secret.write_text("postgresql://pa:pw@db/pa\n")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL_FILE", str(secret))
    assert Settings.from_env().database_url == "postgresql://pa:pw@db/pa"


def test_time_limit_must_stay_below_visibility_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_TIMEOUT", "3600")
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env()
    assert "BROKER_VISIBILITY_TIMEOUT" in str(err.value)


def test_bad_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_TICK_SECONDS", "soon")
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env()
    assert "SCHEDULER_TICK_SECONDS" in str(err.value)


@pytest.mark.parametrize("content", [None, ""])
def test_missing_or_empty_secret_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
    content: str | None,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_URL_FILE", str(path))
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env()
    assert err.value.field == "REDIS_URL_FILE"
