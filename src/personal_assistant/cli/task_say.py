"""``pa task add --say "..."``: a task said in plain English, shown and confirmed, then made.

The request is read in the user's zone (``propose_task``: offline, and checked by the model
when one is configured); the reading and its next three firings are printed and
``Create this task? [y/N]`` asked (``--yes`` for scripts). A request not read for sure is a
question: its reason, then the closest reading (and the model's, when it read it otherwise),
each with its firings, and ``Create it? [y/N]`` (or ``Create which? [1/2/n]``). With ``--yes``
or ``--json`` there is nobody to ask: it creates nothing, prints ``error: text: <reason>`` with
the readings as "Did you mean ...?", and exits with status 2.
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
from personal_assistant.errors import ValidationError
from personal_assistant.tasks import proposals

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import AITask, User

#: How many firings are shown before asking.
SHOWN = 3

#: A reading to offer and its next firings.
Offer = tuple[Proposal, list[datetime]]

_SOURCES = {
    "offline+model": "this parser and the model, alike",
    "model": "the model only: check it",
}


def add_said(
    text: str, overrides: Mapping[str, Any], *, yes: bool, user: int | None, as_json: bool
) -> None:
    """Read ``text``, show the reading, ask (unless ``yes``) and create the task."""

    async def read(app: Assistant, owner: User) -> tuple[Proposal | Refusal, list[Offer], str]:
        reading = await app.tasks.propose_task(owner.id, text)
        offers: list[Offer] = []
        for proposal in _candidates(reading):
            try:
                _, firings = await app.tasks.preview_schedule(owner.id, proposal.schedule, SHOWN)
            except ValidationError:  # a closest reading with no firing left: not offered
                continue
            offers.append((proposal, firings))
        return reading, offers, owner.timezone

    reading, offers, zone = session.run_for(user, read)
    if isinstance(reading, Refusal) and (yes or as_json or not offers):
        raise proposals.refused(reading)
    for proposal, _ in offers:  # an unknown override fails before asking
        proposals.task_fields(proposal, overrides)
    chosen = _choose(reading, offers, zone, yes=yes, as_json=as_json)
    task: AITask | None = None
    if chosen is not None:
        fields = proposals.task_fields(chosen, overrides)

        async def create(app: Assistant, owner: User) -> AITask:
            return await app.tasks.create_task(owner.id, **fields)

        task = session.run_for(user, create)
    if as_json:
        proposal, firings = offers[0]
        print_json(
            {
                "proposal": proposals.view(proposal),
                "next_firings": [iso(f) for f in firings],
                "created": None if task is None else views.task(task),
            }
        )
    elif task is None:
        typer.echo("nothing created")
    else:
        typer.echo(f"created task {task.id}: {task.title}")
        typer.echo(block([("next run", when(task.next_run_at, zone))]))


def _candidates(reading: Proposal | Refusal) -> list[Proposal]:
    if isinstance(reading, Proposal):
        return [reading]
    return [p for p in (reading.closest, reading.other) if p is not None]


def _choose(
    reading: Proposal | Refusal, offers: list[Offer], zone: str, *, yes: bool, as_json: bool
) -> Proposal | None:
    """The reading to create: the proposal when confirmed, or the one of the offers picked."""
    if isinstance(reading, Proposal):
        if not as_json:
            _show(*offers[0], zone)
        sure = yes or typer.confirm("Create this task?", default=False, err=as_json)
        return reading if sure else None
    typer.echo(reading.reason)
    if len(offers) == 1:
        typer.echo("\nDid you mean:")
        _show(*offers[0], zone)
        return offers[0][0] if typer.confirm("Create it?", default=False) else None
    for number, (proposal, firings) in enumerate(offers, start=1):
        label = "the offline reading" if number == 1 else "or the model's"
        typer.echo(f"\n{number}) {label}:")
        _show(proposal, firings, zone)
    answer = typer.prompt("Create which? [1/2/n]", default="n", show_default=False)
    return {"1": offers[0][0], "2": offers[1][0]}.get(answer.strip())


def _show(proposal: Proposal, firings: list[datetime], zone: str) -> None:
    shown = proposals.view(proposal)
    lines: list[tuple[str, object]] = [
        ("title", shown["title"]),
        ("instruction", shown["instruction"] or None),
        ("type", shown["task_type"]),
        ("schedule", shown["description"]),
        ("timezone", shown["timezone"]),
    ]
    if proposal.source in _SOURCES:
        lines.append(("read by", _SOURCES[proposal.source]))
    typer.echo(block(lines))
    typer.echo(f"\nnext {SHOWN} firings:")
    typer.echo(tables.firings(firings, zone))
