"""Who is signed in to the dashboard, and the forms' CSRF tokens.

Signing in takes an API key (``pa user key create``); the key is kept in a cookie
(``HttpOnly``, ``SameSite=Strict``, ``Path=/``, ``Secure`` over https) and every page
authenticates it again through the façade, so a revoked key signs its browser out on the next
click. Signing out clears the cookie.

Every form that changes something carries a token, HMAC-SHA256 of a fixed label under the
visitor's key (:func:`csrf_token`), compared in constant time: a POST without it, or with
another's, is refused (403) before anything is read or changed. ``SameSite=Strict`` is the
second line. The sign-in form has its own token, a random value also set as a cookie
(double submit), so another site cannot sign a browser in to an account of its choosing.

A page asked for while signed out goes to ``/signin?next=PATH``, and signing in lands on it;
``next`` is only ever a path of this site (:func:`local_path`), so no link can make the
sign-in an open redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from personal_assistant.api.security import assistant
from personal_assistant.errors import AuthenticationError, ForbiddenError

if TYPE_CHECKING:
    from personal_assistant.database.models import User

__all__ = [
    "COOKIE",
    "SIGNIN_COOKIE",
    "Posted",
    "Visiting",
    "Visitor",
    "check_csrf",
    "csrf_token",
    "forget",
    "local_path",
    "remember",
    "signin_url",
    "visitor",
]

#: The cookie holding the visitor's API key, and the sign-in form's double-submit cookie.
COOKIE, SIGNIN_COOKIE = "pa_session", "pa_signin"
#: The header the preview script sends the token in (forms send the field ``csrf``).
CSRF_HEADER = "x-csrf-token"
_LABEL = b"personal-assistant dashboard csrf v1"
#: The longest ``next`` kept; a longer one lands on the tasks.
NEXT_MAX = 2000


@dataclass(frozen=True, repr=False)
class Visitor:
    """The signed-in user, and the CSRF token of their forms."""

    user: User
    csrf: str

    def __repr__(self) -> str:
        return f"Visitor(user_id={self.user.id!r})"


def csrf_token(key: str) -> str:
    """The forms' token for the visitor signed in with ``key`` (it reveals nothing of it)."""
    return hmac.new(key.encode(), _LABEL, hashlib.sha256).hexdigest()


def same(given: object, expected: str) -> bool:
    """Whether ``given`` is the text ``expected``, compared in constant time."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


async def visitor(request: Request) -> Visitor:
    """The user of the session cookie; none, or a key no longer valid, is an
    AuthenticationError (a page answers it with the sign-in page)."""
    key = request.cookies.get(COOKIE)
    if not key:
        raise AuthenticationError("sign in with an API key", field="key")
    user = await assistant(request).keys.authenticate(key)
    return Visitor(user, csrf_token(key))


Visiting = Annotated[Visitor, Depends(visitor)]


def check_csrf(request: Request, form: FormData, me: Visitor) -> None:
    """Refuse (403) a state-changing request whose token, in the form or the header, is not
    the visitor's."""
    given = form.get("csrf") or request.headers.get(CSRF_HEADER)
    if not same(given, me.csrf):
        raise ForbiddenError("the form's security token is missing or wrong", field="csrf")


async def posted(request: Request, me: Visiting) -> FormData:
    """The submitted form, once its CSRF token is checked."""
    form = await request.form()
    check_csrf(request, form, me)
    return form


Posted = Annotated[FormData, Depends(posted)]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def remember(response: Response, request: Request, key: str) -> None:
    """Keep the visitor signed in with ``key`` (a session cookie: gone when the browser
    closes), and drop the sign-in form's cookie."""
    response.set_cookie(
        COOKIE, key, httponly=True, samesite="strict", path="/", secure=_secure(request)
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/signin")


def forget(response: Response, request: Request) -> None:
    """Sign the visitor out: the cookie is cleared."""
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def signin_token(request: Request) -> str:
    """The sign-in form's token: the browser's own if it has one, else a new one."""
    return request.cookies.get(SIGNIN_COOKIE) or secrets.token_urlsafe(24)


def set_signin_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/signin",
        secure=_secure(request),
    )


def check_signin(request: Request, form: FormData) -> None:
    """Refuse (403) a sign-in whose form token is not the one of the browser's cookie."""
    cookie = request.cookies.get(SIGNIN_COOKIE)
    if not cookie or not same(form.get("csrf"), cookie):
        raise ForbiddenError("the form's security token is missing or wrong", field="csrf")


def local_path(value: object) -> str:
    """``value`` if it is a path of this site (``/inbox``, ``/tasks/7?done=saved``), else
    ``/`` (pure).

    Only a single leading ``/`` is a local path: ``//host`` and ``/\\host`` are another site
    to a browser (which reads a backslash as a slash and drops tabs and newlines), and a
    scheme (``https:``, ``javascript:``) is refused, as are control characters and spaces.
    """
    if not isinstance(value, str) or not 1 <= len(value) <= NEXT_MAX:
        return "/"
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if not value.isascii() or not value.isprintable() or " " in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(("/signin", "/signout")):
        return "/"
    return value


def signin_url(target: str) -> str:
    """The sign-in page that lands on ``target`` (a local path) once signed in."""
    path = local_path(target)
    return "/signin" if path == "/" else f"/signin?next={quote(path, safe='')}"
