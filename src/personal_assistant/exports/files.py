"""Export files: their names, atomic writes, and the cleanup of expired ones.

Files are written atomically (a temporary file in the same directory, then a rename), readable
by their owner only, named ``pa-export-user-<id>-<UTC timestamp>.json|zip``;
:func:`cleanup_exports` deletes those older than a TTL, and nothing else. The directory is
``EXPORT_DIR`` and the TTL ``EXPORT_TTL_HOURS`` (:func:`settings_export_dir`,
:func:`settings_export_ttl`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from personal_assistant.config import Settings
    from personal_assistant.exports.document import ExportFormat

_NAME_RE = re.compile(r"pa-export-user-(\d+)-(\d{8}T\d{6}\.\d{6})Z\.(json|zip)")
_STAMP = "%Y%m%dT%H%M%S.%f"
_TEMP_PREFIX, _TEMP_SUFFIX = ".pa-export-", ".tmp"


def export_filename(user_id: int, fmt: ExportFormat, at: datetime) -> str:
    stamp = at.astimezone(UTC).strftime(_STAMP)
    return f"pa-export-user-{user_id}-{stamp}Z.{'json' if fmt == 'json' else 'zip'}"


def exported_at(name: str) -> datetime | None:
    """The UTC time in an export file's name; None for any other name."""
    match = _NAME_RE.fullmatch(name)
    return None if match is None else datetime.strptime(match[2], _STAMP).replace(tzinfo=UTC)


def expired_exports(
    entries: Iterable[tuple[str, datetime]], *, now: datetime, ttl: timedelta
) -> list[str]:
    """Names to delete among ``(name, modified_at)`` entries of the export directory.

    An export is expired when the time in its name is more than ``ttl`` before ``now``; a
    temporary file left by an interrupted write when it was last modified that long ago. Any
    other file is never selected.
    """
    expired = []
    for name, modified_at in entries:
        made = exported_at(name)
        if made is None and name.startswith(_TEMP_PREFIX) and name.endswith(_TEMP_SUFFIX):
            made = modified_at
        if made is not None and now - made > ttl:
            expired.append(name)
    return sorted(expired)


def cleanup_exports(export_dir: Path, *, now: datetime, ttl: timedelta) -> int:
    """Delete the expired exports in ``export_dir``; return how many were deleted."""
    entries = []
    with contextlib.suppress(FileNotFoundError):  # no directory, or a file gone meanwhile
        for entry in os.scandir(export_dir):
            if entry.is_file(follow_symlinks=False):
                modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                entries.append((entry.name, modified))
    deleted = 0
    for name in expired_exports(entries, now=now, ttl=ttl):
        with contextlib.suppress(FileNotFoundError):  # another cleanup got there first
            (export_dir / name).unlink()
            deleted += 1
    return deleted


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def settings_export_dir(settings: Settings) -> Path:
    """``EXPORT_DIR``, ``var/exports`` by default."""
    return settings.export_dir


def settings_export_ttl(settings: Settings) -> timedelta:
    """``EXPORT_TTL_HOURS``, 24 by default."""
    return timedelta(hours=settings.export_ttl_hours)
