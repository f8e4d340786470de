"""The channel-URL cipher and where its keys come from (CHANNEL_KEYS, or var/channel.key)."""

from __future__ import annotations

import asyncio
import logging
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from personal_assistant.channel_keys import (
    UNREADABLE,
    ChannelCipher,
    UnknownKeyError,
    channel_cipher,
    optional_cipher,
    read_or_create_key,
)
from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError, DeliveryError
from personal_assistant.notifications.transports.apprise import AppriseTransport
from personal_assistant.notifications.transports.base import Message, Recipient

URL = "json://lou:Hunter2PasswordValue@hooks.example.org/notify?token=s3cretTokenValue42"
PG = "postgresql://pa@db.internal/pa"


@pytest.fixture(autouse=True)
def _no_keys_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHANNEL_KEYS", "CHANNEL_KEYS_FILE", "DATABASE_URL", "DATABASE_URL_FILE"):
        monkeypatch.delenv(name, raising=False)


def key() -> bytes:
    return Fernet.generate_key()


def settings(home: Path, **env: str) -> Settings:
    return Settings(PA_HOME=str(home), **env)  # type: ignore[call-arg]  # aliases are init names


def test_a_sealed_url_opens_only_with_its_key() -> None:
    mine, other = key(), key()
    sealed = ChannelCipher([mine]).seal(URL)
    assert "Hunter2" not in sealed and "s3cret" not in sealed and "hooks" not in sealed
    assert ChannelCipher([mine]).open(sealed) == URL
    assert ChannelCipher([other, mine]).open(sealed) == URL  # every key opens
    with pytest.raises(UnknownKeyError) as caught:
        ChannelCipher([other]).open(sealed)
    assert caught.value.message == UNREADABLE == "cannot decrypt: key not in CHANNEL_KEYS"
    with pytest.raises(UnknownKeyError):
        ChannelCipher([mine]).open("not a token at all")


def test_rotate_re_seals_with_the_first_key() -> None:
    old, new = key(), key()
    rotated = ChannelCipher([new, old]).rotate(ChannelCipher([old]).seal(URL))
    assert ChannelCipher([new]).open(rotated) == URL
    with pytest.raises(UnknownKeyError):
        ChannelCipher([old]).open(rotated)
    with pytest.raises(UnknownKeyError):
        ChannelCipher([new]).rotate(ChannelCipher([key()]).seal(URL))


def test_the_cipher_shows_no_key() -> None:
    secret = key()
    cipher = ChannelCipher([secret, key()])
    assert repr(cipher) == str(cipher) == "ChannelCipher(keys=2)"


@pytest.mark.parametrize(
    "value",
    ["not-a-key", "abc,", "c2hvcnQ=", Fernet.generate_key().decode()[:-2] + "!!"],
    ids=[
        "not-base64",
        "trailing-comma",
        "too-short",
        "bad-characters",
    ],  # the same in every process
)
def test_a_malformed_key_is_refused_without_being_shown(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        settings(tmp_path, CHANNEL_KEYS=value)
    assert caught.value.field == "CHANNEL_KEYS"
    assert "Fernet.generate_key()" in caught.value.message
    assert value.split(",")[0] not in str(caught.value)


def test_keys_are_comma_separated_and_read_from_a_docker_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = key(), key()
    secret = tmp_path / "channel_keys"
    secret.write_text(f" {first.decode()} , {second.decode()}\n")
    monkeypatch.delenv("CHANNEL_KEYS", raising=False)
    monkeypatch.setenv("CHANNEL_KEYS_FILE", str(secret))
    monkeypatch.setenv("PA_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", PG)
    loaded = Settings.from_env()
    assert first.decode() not in repr(loaded)
    cipher = channel_cipher(loaded)
    assert ChannelCipher([first]).open(cipher.seal(URL)) == URL  # the first one seals
    assert cipher.open(ChannelCipher([second]).seal(URL)) == URL
    assert not (tmp_path / "var").exists()


def test_an_empty_value_is_unset(tmp_path: Path) -> None:
    assert settings(tmp_path, CHANNEL_KEYS="").channel_keys_raw is None


def test_the_embedded_default_makes_a_key_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    sealed = channel_cipher(settings(tmp_path)).seal(URL)
    path = tmp_path / "var" / "channel.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = path.read_bytes()
    assert channel_cipher(settings(tmp_path)).open(sealed) == URL
    assert path.read_bytes() == stored
    assert sorted(p.name for p in path.parent.iterdir()) == ["channel.key"]


def test_an_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "channel.key"
    mine = key()
    path.write_bytes(mine + b"\n")
    assert read_or_create_key(path) == mine
    assert path.read_bytes() == mine + b"\n"


def test_processes_starting_together_share_one_generated_key(tmp_path: Path) -> None:
    path = tmp_path / "var" / "channel.key"
    found: list[bytes] = []
    start = threading.Barrier(8)

    def race() -> None:
        start.wait()
        found.append(read_or_create_key(path))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and set(found) == {path.read_bytes().strip()}


def test_a_database_server_without_keys_is_refused(tmp_path: Path) -> None:
    """Every machine would make its own key, and none could open the others' URLs."""
    with pytest.raises(ConfigurationError) as caught:
        channel_cipher(settings(tmp_path, DATABASE_URL=PG))
    assert caught.value.field == "CHANNEL_KEYS"
    assert "Fernet.generate_key()" in caught.value.message
    assert not (tmp_path / "var").exists()


def test_keys_set_on_the_embedded_default_win_over_the_key_file(tmp_path: Path) -> None:
    mine = key()
    cipher = channel_cipher(settings(tmp_path, CHANNEL_KEYS=mine.decode()))
    assert ChannelCipher([mine]).open(cipher.seal(URL)) == URL
    assert not (tmp_path / "var" / "channel.key").exists()


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "var" / "channel.key"
    path.parent.mkdir()
    path.write_text("garbage\n")
    with pytest.raises(ConfigurationError) as caught:
        channel_cipher(settings(tmp_path))
    assert "channel.key" in caught.value.message and "garbage" not in str(caught.value)


def _send(transport: AppriseTransport, sealed: str) -> DeliveryError:
    recipient = Recipient(1, "Ada", None, None, "hook", sealed)
    with pytest.raises(DeliveryError) as caught:
        asyncio.run(transport.send(recipient, Message("title", "body")))
    return caught.value


def test_a_url_no_key_opens_is_a_permanent_failure_before_any_connection() -> None:
    failed = _send(AppriseTransport(ChannelCipher([key()])), ChannelCipher([key()]).seal(URL))
    assert (failed.message, failed.permanent) == (UNREADABLE, True)


def test_a_process_without_keys_fails_transiently_for_one_that_has_them_to_retry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        cipher = optional_cipher(settings(tmp_path, DATABASE_URL=PG))
    assert cipher is None and "event=channel_keys_missing" in caplog.text
    failed = _send(AppriseTransport(cipher), ChannelCipher([key()]).seal(URL))
    assert failed.permanent is False
    assert failed.message == "cannot decrypt: CHANNEL_KEYS is not set for this process"
