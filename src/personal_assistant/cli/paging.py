"""The notice of a list cut at ``--limit``: how many are shown and the command of the next page
(pure)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def next_page(
    command: str,
    shown: int,
    last_id: int,
    options: Sequence[tuple[str, object]] = (),
    *,
    noun: str = "tasks",
) -> str:
    """``showing 100 tasks; more exist. Next page: pa task list --after 1234 --status active``.

    ``options`` are the flags the first page was listed with (``None`` ones are left out), so
    that the next page lists the same rows; a flag whose value is True is given alone.
    """
    flags = [f"--after {last_id}"]
    for flag, value in options:
        if value is True:
            flags.append(flag)
        elif value is not None and value is not False:
            flags.append(f"{flag} {shlex.quote(str(value))}")
    return f"showing {shown} {noun}; more exist. Next page: {command} {' '.join(flags)}"
