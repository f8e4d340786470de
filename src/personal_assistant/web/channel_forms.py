"""The channels page: the visitor's channels listed, a form to add one, and each one's "Send a
test" and "Remove" buttons.

A channel URL carries secrets: a page shows it masked (``pa channel list``'s form) and never
the URL typed, not even on the form shown again after an error, which names the field at fault
(``name`` or ``url``: a destination the outbound policy refuses is refused with its reason,
before anything is stored). Another user's channel is the 404 page, as an unknown one.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from personal_assistant.api.security import App
from personal_assistant.app.assistant import Assistant
from personal_assistant.app.channels import ChannelTest
from personal_assistant.errors import ConflictError, ValidationError, http_status
from personal_assistant.notifications.transports.apprise_urls import validate
from personal_assistant.redaction import redact
from personal_assistant.web.errors import PageRoute
from personal_assistant.web.pages import chrome
from personal_assistant.web.rendering import render
from personal_assistant.web.session import Posted, Visiting, Visitor

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: The longest name and URL the form takes (as the API: 100 and 4096 characters).
NAME_MAX, URL_MAX = 100, 4096


async def _page(
    request: Request,
    app: Assistant,
    me: Visitor,
    *,
    status: int = 200,
    name: str = "",
    error: ValidationError | ConflictError | None = None,
    tested: tuple[str, ChannelTest] | None = None,
) -> HTMLResponse:
    found = await app.channels.list_for(me.user.id)
    return render(
        request,
        "channels.html",
        status,
        channels=found,
        typed_name=name,
        error=None if error is None else redact(error.message),
        error_field=None if error is None else error.field,
        tested=None if tested is None else _said(*tested),
        **await chrome(app, me, request),
    )


def _said(name: str, done: ChannelTest) -> dict[str, object]:
    """What the page says of a test send (its reason redacted, in case it quotes a URL)."""
    if done.delivered:
        again = " It is active again." if done.reactivated else ""
        return {"ok": True, "text": f"Test sent through {name}: delivered.{again}"}
    reason = redact(done.reason or "no reason given").rstrip(".")
    kind = "a permanent failure: check the URL" if done.permanent else "it may work later"
    return {"ok": False, "text": f"Test through {name} not delivered ({kind}): {reason}."}


@router.get("/channels")
async def channels(request: Request, me: Visiting, app: App) -> HTMLResponse:
    """The visitor's notification channels (their destinations masked) and the form to add
    one."""
    return await _page(request, app, me)


@router.post("/channels")
async def add_channel(request: Request, me: Visiting, app: App, form: Posted) -> Response:
    """Add a channel: the URL is checked with Apprise and against the outbound policy; an error
    shows the form again (422) naming the field, with the name kept and the URL not shown."""
    name, url = form.get("name"), form.get("url")
    shown = name.strip()[:NAME_MAX] if isinstance(name, str) else ""
    try:
        if isinstance(name, str) and len(name) > NAME_MAX:
            raise ValidationError(f"must be at most {NAME_MAX} characters", field="name")
        if isinstance(url, str) and len(url) > URL_MAX:
            raise ValidationError(f"must be at most {URL_MAX} characters", field="url")
        cleaned = name.strip() if isinstance(name, str) else name
        spec = await asyncio.to_thread(validate, cleaned, url)
        await app.channels.add(me.user.id, spec)
    except (ValidationError, ConflictError) as exc:  # a conflict: the name is taken
        return await _page(request, app, me, status=http_status(exc), name=shown, error=exc)
    return RedirectResponse("/channels?done=channel-added", status_code=303)


@router.post("/channels/{name}/test")
async def test_channel(
    name: str, request: Request, me: Visiting, app: App, form: Posted
) -> Response:
    """Send a test message through the visitor's channel ``name`` now, and say what it did."""
    done = await app.channels.test(me.user, name)
    return await _page(request, app, me, tested=(name, done))


@router.post("/channels/{name}/remove")
async def remove_channel(name: str, me: Visiting, app: App, form: Posted) -> Response:
    """Remove the visitor's channel ``name``."""
    await app.channels.remove(me.user.id, name)
    return RedirectResponse("/channels?done=channel-removed", status_code=303)
