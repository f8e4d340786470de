"""``create_site(settings)``: the HTTP API with the web dashboard beside it, one application on
one façade (what ``pa serve`` and ``pa run`` serve).

The dashboard's pages are at ``/`` (the tasks and the "Say it" field), ``/tasks/...``,
``/inbox``, ``/channels``, ``/health`` and ``/signin``, its files under ``/static``; the API
keeps ``/v1/...``, ``/healthz``, ``/openapi.json`` and ``/docs``, and its errors stay problems.
The secure headers of the API (its CSP allows nothing inline) are on every page too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from personal_assistant.api.app import create_app
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.web import (
    actions,
    channel_forms,
    errors,
    pages,
    say_forms,
    signin,
    task_forms,
)

__all__ = ["STATIC", "create_site"]

STATIC = Path(__file__).parent / "static"


def create_site(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    app = create_app(settings, clock=clock)
    # The forms' routes first: ``/tasks/new`` and ``/tasks/say`` before ``/tasks/{task_id}``.
    routers = (
        signin.router,
        task_forms.router,
        say_forms.router,
        actions.router,
        channel_forms.router,
    )
    for router in (*routers, pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    errors.install(app)
    return app
