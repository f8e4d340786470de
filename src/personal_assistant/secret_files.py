"""Reading a ``<NAME>_FILE`` setting (a Docker secret) that cannot hang start-up or fill memory.

The value of ``DATABASE_URL_FILE`` and its siblings is a path, read once at start-up. Read with
``Path.read_text``, a FIFO at that path made start-up wait for a writer for ever, and a large
file (or ``/dev/zero``) was read whole. So the path is looked at before it is opened: only a
regular file (a symbolic link to one is fine: Kubernetes mounts secrets that way) of at most
:data:`MAX_BYTES` is read. It is opened without blocking and looked at again through the open
descriptor, so a file swapped for a FIFO in between cannot block either, and at most
``MAX_BYTES + 1`` bytes are read, so a file that grows in between is still refused.

A secret readable by the file's group or by everyone is read, with a warning that names the
setting and the mode (never the content): Docker Compose and Swarm mount secrets ``0444``
unless told otherwise (``mode: 0400``).
"""

from __future__ import annotations

import logging
import os
import stat

from personal_assistant.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The largest secret file read, in bytes: URLs and keys are far smaller.
MAX_BYTES = 64 * 1024
#: Open flags: never wait (a FIFO with no writer), never become a controlling terminal.
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def _check(info: os.stat_result, path: str, field: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(
            f"{path!r} is a {_kind(info.st_mode)}, not a regular file", field=field
        )
    if info.st_size > MAX_BYTES:
        raise ConfigurationError(
            f"{path!r} is larger than {MAX_BYTES} bytes: not a secret", field=field
        )


def _cannot_read(path: str, exc: OSError, field: str) -> ConfigurationError:
    return ConfigurationError(
        f"cannot read {path!r}: {exc.strerror or type(exc).__name__}", field=field
    )


def read_secret_file(name: str, path: str) -> str:
    """The stripped text of ``path``, given as ``<name>_FILE``; a clear error naming it if not.

    Refused: a path that is not a regular file (checked before it is opened), a file over
    :data:`MAX_BYTES`, text that is not UTF-8, an empty file.
    """
    field = f"{name}_FILE"
    try:
        _check(os.stat(path), path, field)
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise _cannot_read(path, exc, field) from None
    try:
        info = os.fstat(fd)
        _check(info, path, field)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _cannot_read(path, exc, field) from None
    finally:
        os.close(fd)
    if size > MAX_BYTES:
        raise ConfigurationError(
            f"{path!r} is larger than {MAX_BYTES} bytes: not a secret", field=field
        )
    try:
        value = b"".join(chunks).decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path!r} is not UTF-8 text", field=field) from None
    if not value:
        raise ConfigurationError(f"the file {path!r} is empty", field=field)
    if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "event=secret_file_readable_by_others field=%s mode=%s hint=%s",
            field,
            oct(stat.S_IMODE(info.st_mode)),
            "make it readable by its owner only (chmod 0400, or the secret's mode: 0400)",
        )
    return value
