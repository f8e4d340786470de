"""``/signin`` and ``/signout``: a session from an API key, and its end.

``/signin?next=/inbox`` lands on ``/inbox`` once signed in; a ``next`` that is not a path of
this site (``//evil.example``, ``https://evil.example``, ``/\\evil.example``) lands on the
tasks (:func:`~personal_assistant.web.session.local_path`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from personal_assistant.api.security import App
from personal_assistant.errors import AuthenticationError
from personal_assistant.web import session
from personal_assistant.web.errors import PageRoute
from personal_assistant.web.rendering import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Said of any key refused: never why (unknown, revoked, malformed).
REFUSED = "That key was not accepted. Create one with `pa user key create NAME`."


def _form(
    request: Request, landing: str, status: int = 200, error: str | None = None
) -> HTMLResponse:
    token = session.signin_token(request)
    answer = render(
        request, "signin.html", status, me=None, csrf=token, error=error, landing=landing
    )
    session.set_signin_token(answer, request, token)
    return answer


@router.get("/signin")
async def signin_form(request: Request) -> Response:
    """The sign-in form; ``next``: the page to land on (a local path, else the tasks)."""
    return _form(request, session.local_path(request.query_params.get("next")))


@router.post("/signin")
async def signin(request: Request, app: App) -> Response:
    """Check the key, keep it in the session cookie, and go to the page first asked for (the
    form's ``next``, if a local path) or the tasks."""
    form = await request.form()
    session.check_signin(request, form)
    landing = session.local_path(form.get("next"))
    key = form.get("key")
    try:
        if not isinstance(key, str) or not key.strip():
            raise AuthenticationError(REFUSED, field="key")
        await app.keys.authenticate(key.strip())
    except AuthenticationError:
        return _form(request, landing, 401, REFUSED)
    answer = RedirectResponse(landing, status_code=303)
    session.remember(answer, request, key.strip())
    return answer


@router.post("/signout")
async def signout(request: Request, form: session.Posted) -> Response:
    """End the session (the key itself stays valid)."""
    answer = RedirectResponse("/signin", status_code=303)
    session.forget(answer, request)
    return answer
