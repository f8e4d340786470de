"""Errors on the dashboard's pages: an HTML page, not an API problem.

The dashboard's routes are :class:`PageRoute`\\ s. :func:`install` wraps the API's exception
handlers (:mod:`personal_assistant.api.problems`) so that an error raised by a page is answered
as a page, and every other route's as before: not signed in (or a key no longer valid) goes to
the sign-in page, which then lands on the page asked for; another user's object, as an unknown
one, is the 404 page; a refused CSRF token the 403 page; a malformed path (``/tasks/abc``) the
404 page. A browser asking for a page that does not exist (``Accept: text/html``, outside the
API's paths) gets the 404 page too.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from personal_assistant.errors import AuthenticationError, PersonalAssistantError, http_status
from personal_assistant.redaction import redact
from personal_assistant.web.rendering import render
from personal_assistant.web.session import forget, signin_url

__all__ = ["PageRoute", "install"]

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

_TITLES = {
    400: "Bad request",
    403: "Refused",
    404: "Not found",
    405: "Not allowed",
    409: "Not possible now",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
}


class PageRoute(APIRoute):
    """A route of the dashboard: its errors are pages."""


def install(app: FastAPI) -> None:
    """Answer the errors of :class:`PageRoute`\\ s with pages (the API's stay problems)."""
    for kind in (PersonalAssistantError, RequestValidationError, HTTPException):
        previous: Handler = app.exception_handlers[kind]
        app.add_exception_handler(kind, _for_pages(previous))


def _for_pages(previous: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(request.scope.get("route"), PageRoute) or _browsing(request):
            return error_page(request, exc)
        answer = previous(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handle


def _browsing(request: Request) -> bool:
    """A browser's request of a page that does not exist (no route matched, HTML wanted)."""
    wants_html = "text/html" in request.headers.get("accept", "")
    return request.scope.get("route") is None and wants_html and not _api(request.url.path)


def _api(path: str) -> bool:
    return path.startswith(("/v1/", "/static/")) or path in ("/healthz", "/openapi.json")


def _asked(request: Request) -> str:
    """The page to land on after signing in: the one asked for (a GET), else the tasks."""
    if request.method != "GET":
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, AuthenticationError):
        answer = RedirectResponse(signin_url(_asked(request)), status_code=303)
        forget(answer, request)
        return answer
    if isinstance(exc, PersonalAssistantError):
        status, detail = http_status(exc), redact(exc.message)
    elif isinstance(exc, RequestValidationError):
        status, detail = 404, "no such page"
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
    else:  # pragma: no cover - only the kinds installed above reach here
        status, detail = 500, "the server could not answer this request"
    if status >= 500:
        detail = "the server could not answer this request"
    title = _TITLES.get(status, "Error")
    return render(request, "error.html", status, title=title, detail=detail, code=status)
