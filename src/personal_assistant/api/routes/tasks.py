"""``/v1/tasks``: create, list (cursor pages), read, edit, pause, resume, run now, delete; a
task's runs; ``/v1/schedule/preview``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from personal_assistant.api.schemas import (
    PreviewIn,
    PreviewOut,
    RunOut,
    TaskEdit,
    TaskIn,
    TaskOut,
    TaskPage,
)
from personal_assistant.api.security import App, Owner
from personal_assistant.app import views
from personal_assistant.core.schedule_json import schedule_to_dict
from personal_assistant.core.schedule_text import describe

router = APIRouter(tags=["tasks"])


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


@router.post("/v1/tasks", status_code=status.HTTP_201_CREATED)
async def create_task(body: TaskIn, owner: Owner, app: App, response: Response) -> TaskOut:
    """Create a task with any schedule kind; `Location` names it."""
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
    response.headers["Location"] = f"/v1/tasks/{task.id}"
    return TaskOut.model_validate(views.task(task))


@router.get("/v1/tasks/{task_id}")
async def get_task(task_id: int, owner: Owner, app: App) -> TaskOut:
    """One of the caller's tasks."""
    return TaskOut.model_validate(views.task(await app.tasks.get_task(task_id, owner.id)))


@router.patch("/v1/tasks/{task_id}")
async def edit_task(task_id: int, body: TaskEdit, owner: Owner, app: App) -> TaskOut:
    """Change the fields given; a new schedule recomputes the next firing."""
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {
        ("description" if name == "instruction" else name): value for name, value in given.items()
    }
    task = await app.tasks.update_task(task_id, owner.id, **changes)
    return TaskOut.model_validate(views.task(task))


@router.post("/v1/tasks/{task_id}/pause")
async def pause_task(task_id: int, owner: Owner, app: App) -> TaskOut:
    """Pause an active task (409 otherwise): it creates no run until resumed."""
    return TaskOut.model_validate(views.task(await app.tasks.pause_task(task_id, owner.id)))


@router.post("/v1/tasks/{task_id}/resume")
async def resume_task(task_id: int, owner: Owner, app: App) -> TaskOut:
    """Resume a paused, completed or failed task from its next firing after now."""
    return TaskOut.model_validate(views.task(await app.tasks.resume_task(task_id, owner.id)))


@router.post("/v1/tasks/{task_id}/run", status_code=status.HTTP_202_ACCEPTED)
async def run_task(task_id: int, owner: Owner, app: App) -> RunOut:
    """Queue an extra run now; the scheduler sends it on its next tick."""
    return RunOut.model_validate(views.run(await app.tasks.run_now(task_id, owner.id)))


@router.delete("/v1/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task_id: int, owner: Owner, app: App) -> None:
    """Delete the task with its runs and notifications."""
    await app.tasks.delete_task(task_id, owner.id)


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
