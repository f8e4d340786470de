"""``/v1/tasks``: create, list (cursor pages), read, edit, pause, resume, run now, delete; a
task's runs; ``/v1/schedule/preview``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from personal_assistant.api import problems
from personal_assistant.api.idempotency import IdempotencyKey, Made, once
from personal_assistant.api.schemas import (
    PreviewIn,
    PreviewOut,
    ProposalOut,
    ProposeIn,
    RunOut,
    TaskEdit,
    TaskIn,
    TaskOut,
    TaskPage,
)
from personal_assistant.api.security import App, Owner
from personal_assistant.app import views
from personal_assistant.app.versions import etag, none_match
from personal_assistant.core.phrases import Refusal
from personal_assistant.core.schedule_json import schedule_to_dict
from personal_assistant.core.schedule_text import describe
from personal_assistant.database.models import AITask
from personal_assistant.tasks import proposals

router = APIRouter(tags=["tasks"])

#: The `ETag` of the task as last read: the edit is refused (412) if the task changed since.
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1000,
        description="The `ETag` of the task as last read: if it changed since, 412 and no "
        "change. Send it, so that two editors cannot undo each other's change.",
    ),
]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=1000)]


@router.get("/v1/tasks")
async def list_tasks(
    owner: Owner,
    app: App,
    status_: Annotated[str | None, Query(alias="status")] = None,
    task_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
) -> TaskPage:
    """The caller's tasks by id, `limit` at a time; `next_cursor` fetches the next page."""
    rows = await app.tasks.list_tasks(
        owner.id,
        status=status_,
        task_type=task_type,
        limit=limit + 1,
        after_id=None if cursor is None else int(cursor),
    )
    page = rows[:limit]
    more = len(rows) > limit
    return TaskPage(
        items=[TaskOut.model_validate(views.task(t)) for t in page],
        next_cursor=str(page[-1].id) if more and page else None,
    )


@router.post("/v1/tasks", status_code=status.HTTP_201_CREATED, response_model=TaskOut)
async def create_task(
    body: TaskIn, owner: Owner, app: App, request: Request, key: IdempotencyKey = None
) -> Response:
    """Create a task with any schedule kind; `Location` names it. With an `Idempotency-Key`,
    the same request sent again answers the same task and creates none."""

    async def make() -> Made:
        task = await app.tasks.create_task(
            owner.id,
            body.title,
            schedule=body.schedule,
            description=body.instruction,
            task_type=body.task_type,
            ai_context=body.ai_context,
            notification_channels=body.notification_channels,
            catch_up=body.catch_up,
            max_retries=body.max_retries,
        )
        return Made(201, TaskOut.model_validate(views.task(task)), f"/v1/tasks/{task.id}")

    return await once(app, owner.id, key, request, body, make)


@router.post("/v1/proposals", response_model=ProposalOut)
async def propose_task(body: ProposeIn, owner: Owner, app: App) -> ProposalOut | Response:
    """The task a plain-English request asks for, read in the caller's zone, and its next three
    firings; nothing is created (send the proposal to `POST /v1/tasks`). A request not read for
    sure is a 422 naming `text`, with the `closest` reading when there is one (and the model's
    `other` reading when it read the request differently)."""
    reading = await app.tasks.propose_task(owner.id, body.text)
    if isinstance(reading, Refusal):
        error = proposals.refused(reading)
        offers = {
            name: proposals.view(offer)
            for name, offer in (("closest", reading.closest), ("other", reading.other))
            if offer is not None
        }
        return problems.problem(422, error.message, field=error.field, **offers)
    _, firings = await app.tasks.preview_schedule(owner.id, reading.schedule, 3)
    return ProposalOut.model_validate(
        {"proposal": proposals.view(reading), "next_firings": [views.iso(f) for f in firings]}
    )


@router.get(
    "/v1/tasks/{task_id}",
    response_model=TaskOut,
    responses={304: {"description": "Not modified: `If-None-Match` names the current ETag"}},
)
async def get_task(
    task_id: int, owner: Owner, app: App, response: Response, if_none_match: IfNoneMatch = None
) -> TaskOut | Response:
    """One of the caller's tasks, with its `ETag`; 304 when `If-None-Match` names it."""
    task = await app.tasks.get_task(task_id, owner.id)
    tag = etag(task)
    if if_none_match is not None and none_match(if_none_match, tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return TaskOut.model_validate(views.task(task))


def _tagged(task: AITask, response: Response) -> TaskOut:
    response.headers["ETag"] = etag(task)
    return TaskOut.model_validate(views.task(task))


@router.patch("/v1/tasks/{task_id}", responses=problems.STALE)
async def edit_task(
    task_id: int,
    body: TaskEdit,
    owner: Owner,
    app: App,
    response: Response,
    if_match: IfMatch = None,
) -> TaskOut:
    """Change the fields given; a new schedule recomputes the next firing. With `If-Match`
    (the `ETag` read), a task changed meanwhile is not edited: 412."""
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {
        ("description" if name == "instruction" else name): value for name, value in given.items()
    }
    task = await app.versions.edit(task_id, owner.id, if_match, **changes)
    return _tagged(task, response)


@router.post("/v1/tasks/{task_id}/pause", responses=problems.STALE)
async def pause_task(
    task_id: int, owner: Owner, app: App, response: Response, if_match: IfMatch = None
) -> TaskOut:
    """Pause an active task (409 otherwise): it creates no run until resumed."""
    return _tagged(await app.versions.pause(task_id, owner.id, if_match), response)


@router.post("/v1/tasks/{task_id}/resume", responses=problems.STALE)
async def resume_task(
    task_id: int, owner: Owner, app: App, response: Response, if_match: IfMatch = None
) -> TaskOut:
    """Resume a paused, completed or failed task from its next firing after now."""
    return _tagged(await app.versions.resume(task_id, owner.id, if_match), response)


@router.post("/v1/tasks/{task_id}/run", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut)
async def run_task(
    task_id: int, owner: Owner, app: App, request: Request, key: IdempotencyKey = None
) -> Response:
    """Queue an extra run now; the scheduler sends it on its next tick. With an
    `Idempotency-Key`, the same request sent again answers the same run."""

    async def make() -> Made:
        run = await app.tasks.run_now(task_id, owner.id)
        return Made(202, RunOut.model_validate(views.run(run)))

    return await once(app, owner.id, key, request, None, make)


@router.delete(
    "/v1/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems.STALE
)
async def delete_task(task_id: int, owner: Owner, app: App, if_match: IfMatch = None) -> None:
    """Delete the task with its runs and notifications."""
    await app.versions.delete(task_id, owner.id, if_match)


@router.get("/v1/tasks/{task_id}/runs")
async def task_runs(
    task_id: int,
    owner: Owner,
    app: App,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunOut]:
    """The task's runs, newest first."""
    runs = await app.tasks.list_runs(owner.id, task_id=task_id, limit=limit)
    return [RunOut.model_validate(views.run(r)) for r in runs]


@router.post("/v1/schedule/preview")
async def preview_schedule(body: PreviewIn, owner: Owner, app: App) -> PreviewOut:
    """The next firings of a schedule in the caller's zone; no task is created."""
    schedule, firings = await app.tasks.preview_schedule(owner.id, body.schedule, body.count)
    return PreviewOut(
        schedule=schedule_to_dict(schedule),
        description=describe(schedule),
        timezone=schedule.timezone,
        firings=[str(views.iso(f)) for f in firings],
    )
