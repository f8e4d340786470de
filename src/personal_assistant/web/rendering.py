"""The dashboard's templates (Jinja2, autoescaped) and the filters they use.

The environment is built on first use, not at import.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from personal_assistant.core.schedule_text import duration_text
from personal_assistant.core.wallclock import named_zone
from personal_assistant.redaction import redact

__all__ = ["local", "render", "seconds"]

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local
    env.filters["seconds"] = seconds
    env.filters["redact"] = redact
    return env


def local(moment: datetime | str | None, zone: str | ZoneInfo, *, seconds: bool = False) -> str:
    """``Mon 7 Dec 2026, 08:30 CET``: an instant on the wall clock of ``zone``; ``—`` for
    none."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    where = zone if isinstance(zone, ZoneInfo) else named_zone(zone)
    shown = moment.astimezone(where)
    clock = "%H:%M:%S" if seconds or shown.second else "%H:%M"
    return f"{shown:%a} {shown.day} {shown:%b %Y}, {shown.strftime(clock)} {shown.tzname()}"


def seconds(value: float | None) -> str:
    """``2.4 s``, ``3m5s``; ``—`` for none."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    return duration_text(timedelta(seconds=round(value)))


#: What the page around a template shows when the route gives nothing of it (signed out).
_CHROME: dict[str, Any] = {"me": None, "csrf": "", "unread": 0, "done": None, "path": ""}


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` with ``context`` (and ``request``), as an HTML answer."""
    html = environment().get_template(name).render(_CHROME | context, request=request)
    return HTMLResponse(html, status_code=status)
