"""Who calls, and what every answer carries.

* :func:`caller`: the user named by the ``Authorization: Bearer <key>`` header (a key made by
  ``pa user key create``); no header, or a key unknown or revoked, is a 401 that never says
  which. :func:`admin`: the caller, if an admin (else 403). Each caller's key is then
  counted against its rate limit (:func:`throttle`: 429 past it).
* :class:`Hardened`: an ASGI middleware that refuses a request body over ``max_body`` bytes
  (413, counted as it arrives, whatever ``Content-Length`` claims) and adds the secure headers to
  every answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from personal_assistant.api.ratelimit import Limiter
from personal_assistant.app.assistant import Assistant
from personal_assistant.auth import tokens
from personal_assistant.database.models import User
from personal_assistant.errors import AuthenticationError, ForbiddenError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SECURE_HEADERS",
    "AdminUser",
    "App",
    "Hardened",
    "Owner",
    "admin",
    "assistant",
    "caller",
    "throttle",
]

_bearer = HTTPBearer(auto_error=False, description="An API key: `pa user key create NAME`.")

#: On every answer: no sniffing, no framing, no referrer, nothing cached, nothing loaded
#: but from this origin.
SECURE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
)


def assistant(request: Request) -> Assistant:
    found: Assistant = request.app.state.assistant
    return found


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError(
            "send an API key in the Authorization header, scheme Bearer", field="Authorization"
        )
    user = await assistant(request).keys.authenticate(credentials.credentials)
    throttle(request, credentials.credentials)
    return user


def throttle(request: Request, token: str) -> None:
    """Count a request of an authenticated key against its bucket (:mod:`.ratelimit`, keyed
    by the key's public id): over the limit, a 429 saying when to retry."""
    limiter: Limiter | None = getattr(request.app.state, "limiter", None)
    parsed = tokens.parse(token)
    if limiter is None or parsed is None:
        return
    verdict = limiter.check(parsed[0])
    if not verdict.allowed:
        raise HTTPException(
            429,
            f"over {limiter.per_minute} requests a minute for this API key: retry in "
            f"{verdict.retry_after} s",
            headers={
                "Retry-After": str(verdict.retry_after),
                "RateLimit-Limit": str(limiter.burst),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(verdict.retry_after),
            },
        )


async def admin(user: Annotated[User, Depends(caller)]) -> User:
    if not user.is_admin:
        raise ForbiddenError("an admin's operation", field="Authorization")
    return user


#: What a route takes: the caller, an admin caller, the façade.
Owner = Annotated[User, Depends(caller)]
AdminUser = Annotated[User, Depends(admin)]
App = Annotated[Assistant, Depends(assistant)]


def _hardened(message: Message) -> Message:
    """A response start with the secure headers it does not set itself."""
    if message["type"] != "http.response.start":
        return message
    names = {name.lower() for name, _ in message.get("headers", [])}
    extra = [(k, v) for k, v in SECURE_HEADERS if k not in names]
    return {**message, "headers": [*message.get("headers", []), *extra]}


class _TooLarge(HTTPException):
    """Raised while the body is read: an HTTP error, so the framework answers it (a 413
    problem) instead of taking it for a body it could not parse."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


class Hardened:
    """Secure headers on every answer; a request body over ``max_body`` bytes is a 413."""

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        async def secured(message: Message) -> None:
            await send(_hardened(message))

        await self.app(scope, counted, secured)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from personal_assistant.api.problems import problem

        async def secured(message: Message) -> None:
            await send(_hardened(message))

        answer = problem(413, f"the request body is over {self.max_body} bytes", field="body")
        await answer(scope, receive, secured)
