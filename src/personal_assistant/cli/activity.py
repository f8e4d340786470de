"""``pa runs`` and ``pa notifications``: what the tasks did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.app import views
from personal_assistant.cli import session, tables
from personal_assistant.cli.output import JsonOpt, print_json
from personal_assistant.cli.users import UserOpt

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import Notification, TaskRun, User

LimitOpt = Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")]


def runs(
    task: Annotated[int | None, typer.Option("--task", help="Only this task's runs.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help="queued, running, retrying, succeeded, failed, skipped or cancelled."),
    ] = None,
    limit: LimitOpt = 20,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs of the user's tasks, newest first."""

    async def work(app: Assistant, owner: User) -> tuple[list[TaskRun], str]:
        found = await app.tasks.list_runs(owner.id, task_id=task, state=state, limit=limit)
        return found, owner.timezone

    found, timezone = session.run_for(user, work)
    if as_json:
        print_json([views.run(r) for r in found])
        return
    typer.echo(tables.runs(found, timezone))


def notifications(
    unread: Annotated[bool, typer.Option("--unread", help="Only unread ones.")] = False,
    mark_read: Annotated[
        bool, typer.Option("--mark-read", help="Mark the listed notifications read.")
    ] = False,
    limit: LimitOpt = 20,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the user's notifications, newest first (as they were before --mark-read)."""

    async def work(app: Assistant, owner: User) -> tuple[list[Notification], int]:
        found = await app.tasks.list_notifications(owner.id, unread_only=unread, limit=limit)
        marked = 0
        if mark_read and found:
            marked = await app.tasks.mark_notifications_read(owner.id, [n.id for n in found])
        return found, marked

    found, marked = session.run_for(user, work)
    if as_json:
        print_json({"notifications": [views.notification(n) for n in found], "marked_read": marked})
        return
    typer.echo(tables.notifications(found))
    if mark_read:
        typer.echo(f"marked {marked} read")
