"""Every error as one RFC 9457 problem (``application/problem+json``).

The package's errors (:mod:`personal_assistant.errors`) map to their status in one place
(``HTTP_STATUS``) and keep their ``field``; FastAPI's request validation becomes a 422 naming
the first offending field; an HTTP error of the framework (404 of an unknown path, 405) keeps its
status (a 405 with every method of the path in ``Allow``). Nothing else reaches the client: an
unexpected exception is a 500 with no detail (the log has it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from personal_assistant.api.schemas import Problem
from personal_assistant.app.versions import StaleVersion
from personal_assistant.errors import PersonalAssistantError, http_status
from personal_assistant.redaction import redact

__all__ = ["ANSWERS", "MEDIA_TYPE", "STALE", "install", "problem", "problems_in_spec"]

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
}


#: The error answers every route may give, documented as problems.
ANSWERS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": _TITLES[status]}
    for status in (400, 401, 403, 404, 409, 413, 422, 429)
}
#: The answer of an edit sent with an ``If-Match`` naming a version no longer current.
STALE: dict[int | str, dict[str, Any]] = {
    412: {"model": Problem, "description": "Precondition failed: the task changed meanwhile"}
}


def problems_in_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with every error answer's body under ``application/problem+json``
    (FastAPI writes a model's under ``application/json``)."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for status, answer in operation.get("responses", {}).items():
                content = answer.get("content", {})
                if str(status).startswith(("4", "5")) and "application/json" in content:
                    content[MEDIA_TYPE] = content.pop("application/json")
    spec.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    spec.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return spec


def problem(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": redact(detail),
    }
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _ours(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PersonalAssistantError)
    status = 412 if isinstance(exc, StaleVersion) else http_status(exc)
    if status >= 500:
        log.error("event=api_error path=%s error=%r", request.url.path, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, exc.message, field=exc.field, headers=headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(e.get("loc", ())), "reason": str(e.get("msg", ""))} for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": None, "reason": "invalid request"}
    return problem(422, str(first["reason"]), field=first["field"], errors=errors)


async def _framework(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed(request)
    return problem(exc.status_code, str(exc.detail), headers=headers)


def _allowed(request: Request) -> str:
    """Every method of the request's path (Starlette's 405 names only those of the first route
    with that path: ``OPTIONS /v1/tasks`` would say ``GET`` alone)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("event=api_unexpected path=%s", request.url.path)
    return problem(500, "the server could not answer this request")


def _field(loc: Any) -> str | None:
    """``("body", "schedule", "kind")`` -> ``schedule.kind``; the part of the request left out."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
    app.add_exception_handler(PersonalAssistantError, _ours)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _framework)
    app.add_exception_handler(Exception, _unexpected)
