"""Rendering for people (aligned tables, ``key: value`` blocks) and for scripts (``--json``).

What is printed may come from outside: an agent's answer, a calendar event, a server's error.
Tables and blocks show it through :func:`~personal_assistant.safe_text.terminal_text` (escape
sequences removed, one line, no control or bidi character), and ``--json`` writes those
characters as ``\\uXXXX`` escapes: the decoded value is the stored one, and the terminal that
shows it only displays text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from personal_assistant.app.views import iso
from personal_assistant.safe_text import escape_json_text, terminal_text

__all__ = ["JsonOpt", "block", "iso", "print_json", "shorten", "table", "when"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def when(moment: datetime | None, timezone: str | None = None) -> str:
    """``2026-12-01 08:00 UTC (09:00 Europe/Paris)``; ``-`` for None."""
    if moment is None:
        return "-"
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if timezone and timezone != "UTC":
        local = moment.astimezone(ZoneInfo(timezone))
        same_day = local.date() == moment.astimezone(UTC).date()
        shown = local.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")
        text += f" ({shown} {timezone})"
    return text


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def print_json(data: object) -> None:
    typer.echo(escape_json_text(json.dumps(data, indent=2, ensure_ascii=False, default=_default)))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str) -> str:
    """An aligned plain-text table; ``empty`` when there are no rows."""
    if not rows:
        return empty
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [list(headers), *cells]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def block(pairs: Sequence[tuple[str, object]]) -> str:
    """``key: value`` lines with the values aligned."""
    width = max((len(key) for key, _ in pairs), default=0) + 1
    return "\n".join(f"{key + ':':<{width}} {_cell(value)}".rstrip() for key, value in pairs)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, list | tuple):
        return ",".join(_cell(item) for item in value) or "-"
    return terminal_text(value)


def shorten(text: str | None, limit: int = 50) -> str:
    if not text:
        return "-"
    flat = " ".join(terminal_text(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
