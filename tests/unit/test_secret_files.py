"""``<NAME>_FILE`` settings cannot hang start-up or fill memory (issue 10, item 13).

Before the fix a FIFO at ``DATABASE_URL_FILE`` made ``Settings.from_env()`` wait for a writer for
ever, a file of any size was read whole, and a secret readable by everyone was read silently.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError
from personal_assistant.secret_files import MAX_BYTES, read_secret_file

SECRET = "postgresql://pa:hunter2-planted@db/pa"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.setenv("PA_HOME", str(tmp_path))


def _refused(monkeypatch: pytest.MonkeyPatch, path: Path | str) -> ConfigurationError:
    monkeypatch.setenv("DATABASE_URL_FILE", str(path))
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env()
    assert caught.value.field == "DATABASE_URL_FILE"
    return caught.value


@pytest.mark.timeout(10)
def test_a_fifo_is_refused_without_waiting_for_a_writer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fifo = tmp_path / "db_url"
    os.mkfifo(fifo)
    error = _refused(monkeypatch, fifo)
    assert "FIFO, not a regular file" in str(error)


def test_a_huge_file_is_refused_without_reading_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    huge = tmp_path / "db_url"
    with huge.open("wb") as out:
        out.write(SECRET.encode())
        out.truncate(1 << 30)  # 1 GiB, sparse: costs no disk
    error = _refused(monkeypatch, huge)
    assert f"larger than {MAX_BYTES} bytes" in str(error)
    assert "hunter2" not in str(error)


@pytest.mark.parametrize("size", [MAX_BYTES, MAX_BYTES + 1])
def test_the_limit_is_exact(tmp_path: Path, size: int) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"k" * size)
    path.chmod(0o600)
    if size <= MAX_BYTES:
        assert read_secret_file("AGENT_API_KEY", str(path)) == "k" * size
    else:
        with pytest.raises(ConfigurationError, match="larger than"):
            read_secret_file("AGENT_API_KEY", str(path))


@pytest.mark.parametrize(("target", "kind"), [(os.devnull, "character device"), (".", "directory")])
def test_other_non_regular_files_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str, kind: str
) -> None:
    path = target if target != "." else str(tmp_path)
    assert f"{kind}, not a regular file" in str(_refused(monkeypatch, path))


def test_text_that_is_not_utf8_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "db_url"
    path.write_bytes(b"\xff\xfepostgresql://")
    path.chmod(0o600)
    assert "is not UTF-8 text" in str(_refused(monkeypatch, path))


def test_a_world_readable_secret_is_read_with_a_warning_that_shows_no_content(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db_url"
    path.write_text(SECRET + "\n")
    path.chmod(0o644)
    monkeypatch.setenv("DATABASE_URL_FILE", str(path))
    with caplog.at_level(logging.WARNING):
        assert Settings.from_env().database_url == SECRET
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "event=secret_file_readable_by_others field=DATABASE_URL_FILE mode=0o644" in warnings[0]
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_secret_is_read_silently_through_a_symlink(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    real = tmp_path / "..data" / "db_url"  # how Kubernetes mounts a secret
    real.parent.mkdir()
    real.write_text(SECRET)
    real.chmod(mode)
    link = tmp_path / "db_url"
    link.symlink_to(real)
    with caplog.at_level(logging.WARNING):
        assert read_secret_file("DATABASE_URL", str(link)) == SECRET
    assert not caplog.records
