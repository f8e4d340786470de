"""``pa task add --say "..."``: a task said in plain English, shown and confirmed, then made.

The request is read in the user's zone (``propose_task``); the reading and its next three
firings are printed and ``Create this task? [y/N]`` asked (``--yes`` for scripts). A request
not read for sure creates nothing: ``error: text: <reason>``, with the closest reading as a
question when there is one, and exit status 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from personal_assistant.app import views
from personal_assistant.cli import session, tables
from personal_assistant.cli.output import block, iso, print_json, when
from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.tasks import proposals

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import AITask, User

#: How many firings are shown before asking.
SHOWN = 3


def add_said(
    text: str, overrides: Mapping[str, Any], *, yes: bool, user: int | None, as_json: bool
) -> None:
    """Read ``text``, show the reading, ask (unless ``yes``) and create the task."""

    async def read(app: Assistant, owner: User) -> tuple[Proposal | Refusal, list[datetime], str]:
        reading = await app.tasks.propose_task(owner.id, text)
        if isinstance(reading, Refusal):
            return reading, [], owner.timezone
        _, firings = await app.tasks.preview_schedule(owner.id, reading.schedule, SHOWN)
        return reading, firings, owner.timezone

    reading, firings, zone = session.run_for(user, read)
    if isinstance(reading, Refusal):
        raise proposals.refused(reading)
    fields = proposals.task_fields(reading, overrides)  # an unknown override fails before asking
    if not as_json:
        _show(reading, firings, zone)
    task: AITask | None = None
    if yes or typer.confirm("Create this task?", default=False, err=as_json):

        async def create(app: Assistant, owner: User) -> AITask:
            return await app.tasks.create_task(owner.id, **fields)

        task = session.run_for(user, create)
    if as_json:
        print_json(
            {
                "proposal": proposals.view(reading),
                "next_firings": [iso(f) for f in firings],
                "created": None if task is None else views.task(task),
            }
        )
    elif task is None:
        typer.echo("nothing created")
    else:
        typer.echo(f"created task {task.id}: {task.title}")
        typer.echo(block([("next run", when(task.next_run_at, zone))]))


def _show(proposal: Proposal, firings: list[datetime], zone: str) -> None:
    shown = proposals.view(proposal)
    typer.echo(
        block(
            [
                ("title", shown["title"]),
                ("instruction", shown["instruction"] or None),
                ("type", shown["task_type"]),
                ("schedule", shown["description"]),
                ("timezone", shown["timezone"]),
            ]
        )
    )
    typer.echo(f"\nnext {SHOWN} firings:")
    typer.echo(tables.firings(firings, zone))
