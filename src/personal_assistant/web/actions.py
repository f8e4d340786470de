"""The buttons: a task's pause, resume, run now and delete, and the inbox's mark read. Each is
a form (POST, with the CSRF token) that redirects to the page it changed, saying what it did."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from personal_assistant.api.security import App
from personal_assistant.errors import ValidationError
from personal_assistant.web.errors import PageRoute
from personal_assistant.web.session import Posted, Visiting
from personal_assistant.web.task_forms import digits

router = APIRouter(route_class=PageRoute, include_in_schema=False)


#: The task's buttons: the manager's operation, and what the page then says.
_ACTIONS = {"pause": "paused", "resume": "resumed", "run": "queued", "delete": "deleted"}


@router.post("/tasks/{task_id:int}/{action}")
async def task_action(task_id: int, action: str, me: Visiting, app: App, form: Posted) -> Response:
    """Pause, resume, run now or delete one of the visitor's tasks."""
    if action not in _ACTIONS:
        raise ValidationError("no such action", field="action")
    owner = me.user.id
    if action == "pause":
        await app.tasks.pause_task(task_id, owner)
    elif action == "resume":
        await app.tasks.resume_task(task_id, owner)
    elif action == "run":
        await app.tasks.run_now(task_id, owner)
    else:
        await app.tasks.delete_task(task_id, owner)
        return RedirectResponse("/?done=deleted", status_code=303)
    return RedirectResponse(f"/tasks/{task_id}?done={_ACTIONS[action]}", status_code=303)


@router.post("/inbox/read")
async def mark_read(me: Visiting, app: App, form: Posted) -> Response:
    """Mark the visitor's notifications of ``ids`` read."""
    ids = [int(i) for i in form.getlist("ids") if isinstance(i, str) and digits(i)]
    if ids:
        await app.tasks.mark_notifications_read(me.user.id, ids)
    return RedirectResponse("/inbox?done=read", status_code=303)
