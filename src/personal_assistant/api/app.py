"""``create_app(settings)``: the FastAPI application, on one :class:`Assistant` (one pooled
engine) opened at start-up and closed at shutdown.

Secure by default: every route but ``/healthz`` needs a key, bodies are bounded
(``API_MAX_BODY_BYTES``), every answer carries the secure headers, CORS is off unless
``API_CORS_ORIGINS`` names origins, and errors are problems (:mod:`.problems`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from personal_assistant import __version__
from personal_assistant.api import problems
from personal_assistant.api.events import ServerClosing
from personal_assistant.api.ratelimit import Limiter
from personal_assistant.api.routes import (
    activity,
    calendars,
    channels,
    digests,
    doctor,
    events,
    exports,
    quiet_hours,
    system,
    tasks,
    users,
)
from personal_assistant.api.security import Hardened
from personal_assistant.app.assistant import Assistant
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine

__all__ = ["create_app"]


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(settings.database_url)
        app.state.assistant = Assistant(settings, engine=engine, clock=clock)
        # Per process: each server process counts its own requests (api/ratelimit.py).
        app.state.limiter = Limiter(settings.api_rate_limit_per_minute, settings.api_rate_burst)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Personal assistant",
        version=__version__,
        summary="AI tasks on a schedule, their runs and notifications.",
        lifespan=lifespan,
    )
    for router in (
        tasks.router,
        activity.router,
        users.router,
        system.router,
        channels.router,
        quiet_hours.router,
        calendars.router,
        digests.router,
        exports.router,
        doctor.router,
        events.router,
    ):
        app.include_router(router, responses=problems.ANSWERS)
    problems.install(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.problems_in_spec(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    origins = [o.strip() for o in settings.api_cors_origins.split(",") if o.strip()]
    if origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "If-None-Match",
                "Last-Event-ID",
            ],
            expose_headers=["ETag", "Location", "Retry-After", "Idempotent-Replayed"],
        )
    app.add_middleware(Hardened, max_body=settings.api_max_body_bytes)
    # Outermost: it must see the server's own receive (api/events.py).
    app.add_middleware(ServerClosing)
    return app
