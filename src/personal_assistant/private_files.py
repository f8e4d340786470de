"""Files only their owner may read: the SQLite databases, the broker's file and the logs.

They hold every user's tasks, results and channel settings, and log lines about them. The
process's umask decides the mode of a file that SQLite, kombu or :mod:`logging` create (0644
under the usual 022: readable by every local user), so the file is created here first:
``os.open`` with ``O_CREAT | O_EXCL`` and mode 0600 (never wider than that, even for an
instant, whatever the umask), then ``fchmod`` to exactly 0600 (a stricter umask such as 0277
would otherwise leave it unwritable). SQLite opens the empty file as an empty database and
gives its ``-wal``, ``-shm`` and ``-journal`` files the database file's mode. Directories
this module creates get 0700 the same way.

A file or directory that already exists is left as it is: its mode is the operator's.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700; an existing one is left alone."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it first: its mode is its own
            continue
        os.chmod(directory, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 unless it exists (its directory: 0700 if new)."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path
