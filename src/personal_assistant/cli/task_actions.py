"""``pa task pause|resume|run|delete``: change a task's state or fire it now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.app import views
from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, print_json, when
from personal_assistant.cli.users import UserOpt

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import AITask, TaskRun, User

TaskId = Annotated[int, typer.Argument(help="The task id.", show_default=False)]

#: Where these commands are registered; ``pa task`` (:mod:`~personal_assistant.cli.groups`)
#: builds each from here when it is used.
app = typer.Typer()


@app.command("pause")
def pause(
    task_id: TaskId,
    reason: Annotated[str, typer.Option(help="Why; shown by `pa task show`.")] = (
        "paused by its owner"
    ),
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pause an active task: it stops firing until resumed."""

    async def work(app: Assistant, owner: User) -> AITask:
        return await app.tasks.pause_task(task_id, owner.id, reason=reason)

    task = session.run_for(user, work)
    if as_json:
        print_json(views.task(task))
        return
    typer.echo(f"paused task {task.id} ({task.status_reason})")


@app.command("resume")
def resume(task_id: TaskId, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Resume a paused (or finished) task from its next firing after now."""

    async def work(app: Assistant, owner: User) -> AITask:
        return await app.tasks.resume_task(task_id, owner.id)

    task = session.run_for(user, work)
    if as_json:
        print_json(views.task(task))
        return
    typer.echo(f"resumed task {task.id}; next run: {when(task.next_run_at, task.timezone)}")


@app.command("run")
def run(task_id: TaskId, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Queue a run of the task now, besides its schedule."""

    async def work(app: Assistant, owner: User) -> TaskRun:
        return await app.tasks.run_now(task_id, owner.id)

    queued = session.run_for(user, work)
    if as_json:
        print_json(views.run(queued))
        return
    tick = session.settings().tick_seconds
    typer.echo(
        f"queued run {queued.id} of task {queued.task_id}; the scheduler sends it within a tick "
        f"({tick:g} s) when `pa run` or `pa beat` is running. Follow it with "
        f"`pa runs --task {queued.task_id}`."
    )


def _confirm(task: AITask) -> bool:
    try:
        return typer.confirm(
            f"Delete task {task.id} ({task.title!r}) and its runs?", default=False, err=True
        )
    except typer.Abort:  # no stdin: assume no
        typer.echo("", err=True)
        return False


@app.command("delete")
def delete(
    task_id: TaskId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a task with its runs and notifications (asks first unless --yes)."""

    async def work(app: Assistant, owner: User) -> bool:
        task = await app.tasks.get_task(task_id, owner.id)
        if not (yes or _confirm(task)):
            return False
        await app.tasks.delete_task(task_id, owner.id)
        return True

    if not session.run_for(user, work):
        typer.echo(f"task {task_id} not deleted: pass --yes to delete without asking", err=True)
        raise typer.Exit(1)
    if as_json:
        print_json({"deleted": True, "task_id": task_id})
        return
    typer.echo(f"deleted task {task_id}")
