"""``pa task edit ID``: change the fields given, keep the task (its id, runs and notifications).

Every option of ``pa task add`` may be given; the others stay as they are. The schedule:

* a kind option (``--at``, ``--in``, ``--every``, ``--daily``, ``--weekly``, ``--monthly``,
  ``--cron``) replaces the schedule, with the ``--start``/``--end`` given (none otherwise), in
  ``--tz`` or else the zone the task has;
* ``--start``, ``--end`` or ``--tz`` alone change only that part of the current schedule.

The manager recomputes the next run (:meth:`~personal_assistant.tasks.manager.AITaskManager.
update_task`); the command prints the task and its next firings in the user's zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from personal_assistant.app import views
from personal_assistant.cli import session, tables
from personal_assistant.cli.output import JsonOpt, block, iso, print_json, when
from personal_assistant.cli.schedule_options import ScheduleOptions, to_schedule_dict
from personal_assistant.cli.tasks import (
    AtOpt,
    CronOpt,
    DailyOpt,
    EndOpt,
    EveryOpt,
    InOpt,
    MonthlyOpt,
    StartOpt,
    TaskId,
    WeeklyOpt,
    parse_context,
    upcoming,
)
from personal_assistant.cli.users import UserOpt
from personal_assistant.core.next_run import preview
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_text import describe
from personal_assistant.core.states import TaskStatus
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import AITask, User

#: How many firings the command shows after an edit.
FIRINGS = 3

#: Where ``edit`` is registered; ``pa task`` (:mod:`~personal_assistant.cli.groups`) builds it
#: from here when it is used.
app = typer.Typer()

TzOpt = Annotated[
    str | None,
    typer.Option(
        "--tz",
        rich_help_panel="Schedule: one of --at ... --cron, with --start, --end, --tz",
        help="IANA time zone; default: the task's.",
    ),
]


def new_schedule(
    options: ScheduleOptions, current: dict[str, Any], now: datetime
) -> dict[str, object] | None:
    """The schedule dict that ``options`` give a task whose schedule is ``current`` (its stored
    JSON form), or None when no schedule option is given (module doc)."""
    if options == ScheduleOptions():
        return None
    if options.kinds_given():
        data = to_schedule_dict(options, now)
        data.setdefault("timezone", current.get("timezone", "UTC"))
        return data
    data = dict(current)
    for key, value in (("start", options.start), ("end", options.end), ("timezone", options.tz)):
        if value is not None:
            data[key] = value.strip()
    return data


def next_firings(task: AITask, now: datetime, count: int = FIRINGS) -> list[datetime]:
    """The next ``count`` firings: from the next run of an active task (an edit may have moved
    it past a firing that has its run already), else as ``pa task show`` lists them."""
    if task.status == TaskStatus.ACTIVE and task.next_run_at is not None:
        schedule = parse_schedule(task.schedule)
        return [task.next_run_at, *preview(schedule, task.next_run_at, count - 1)]
    return upcoming(task, now, count)


@app.command("edit")
def edit(
    task_id: TaskId,
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    instruction: Annotated[
        str | None, typer.Option(help="What the assistant should do ('' clears it).")
    ] = None,
    task_type: Annotated[
        str | None, typer.Option("--type", help="reminder, automated_task or periodic_task.")
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            help="Where notifications go (repeatable; replaces the list): in_app or the user's "
            "channels (pa channel list)."
        ),
    ] = None,
    catch_up: Annotated[
        str | None, typer.Option(help="After downtime: once, skip or all missed firings.")
    ] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries of a failed run.")] = None,
    context: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE given to the assistant (repeatable; replaces the context)."),
    ] = None,
    clear_context: Annotated[
        bool, typer.Option("--clear-context", help="Give the assistant no context.")
    ] = False,
    at: AtOpt = None,
    in_: InOpt = None,
    every: EveryOpt = None,
    daily: DailyOpt = None,
    weekly: WeeklyOpt = None,
    monthly: MonthlyOpt = None,
    cron: CronOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    tz: TzOpt = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a task's fields (only those given), keeping its id and runs."""
    options = ScheduleOptions(
        at=at,
        in_=in_,
        every=every,
        daily=daily,
        weekly=weekly,
        monthly=monthly,
        cron=cron,
        start=start,
        end=end,
        tz=tz,
    )
    if context is not None and clear_context:
        raise ValidationError("give --context or --clear-context, not both", field="--context")
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("title", title),
            ("description", instruction),
            ("task_type", task_type),
            ("notification_channels", channel),
            ("catch_up", catch_up),
            ("max_retries", max_retries),
        )
        if value is not None
    }
    if context is not None or clear_context:
        changes["ai_context"] = parse_context(context)
    if not changes and options == ScheduleOptions():
        raise ValidationError(
            "say what to change: an option of `pa task add` (pa task edit --help)", field="task"
        )
    now = session.now()

    async def work(app: Assistant, owner: User) -> tuple[AITask, str]:
        fields = dict(changes)
        if options != ScheduleOptions():
            current = await app.tasks.get_task(task_id, owner.id)
            fields["schedule"] = new_schedule(options, dict(current.schedule), now)
        return await app.tasks.update_task(task_id, owner.id, **fields), owner.timezone

    task, zone = session.run_for(user, work)
    firings = next_firings(task, session.now())
    if as_json:
        print_json({"task": views.task(task), "next_firings": [iso(f) for f in firings]})
        return
    shown = {"description": "instruction", "ai_context": "context"}
    changed = sorted({shown.get(key, key) for key in changes})
    if options != ScheduleOptions():
        changed.append("schedule")
    typer.echo(f"updated task {task.id} ({', '.join(changed)}): {task.title}")
    typer.echo(
        block(
            [
                ("status", task.status),
                ("schedule", describe(parse_schedule(task.schedule))),
                ("next run", when(task.next_run_at, zone)),
                ("channels", task.notification_channels),
            ]
        )
    )
    typer.echo("\nnext firings:")
    typer.echo(tables.firings(firings, zone))
