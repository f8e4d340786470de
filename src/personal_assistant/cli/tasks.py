"""``pa task add|list|show|preview``: create tasks and see when they fire."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.app import views
from personal_assistant.cli import session, tables
from personal_assistant.cli.output import JsonOpt, block, iso, print_json, when
from personal_assistant.cli.paging import next_page
from personal_assistant.cli.schedule_options import ScheduleOptions, to_schedule_dict
from personal_assistant.cli.users import UserOpt
from personal_assistant.core.next_run import preview, validate_for_creation, with_interval_anchor
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.core.schedule_kinds import Schedule
from personal_assistant.core.schedule_text import describe
from personal_assistant.core.states import TaskStatus
from personal_assistant.errors import ValidationError
from personal_assistant.tasks.page import TaskPage, TaskRow

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.app.quick import QuickReads
    from personal_assistant.database.models import AITask, TaskRun, User

#: Where this module's commands are registered; ``pa task``
#: (:data:`personal_assistant.cli.groups.TASK_COMMANDS`) builds each from here when it is used.
app = typer.Typer()

_S = "Schedule: one of --at ... --cron, with --start, --end, --tz"
AtOpt = Annotated[
    str | None,
    typer.Option("--at", rich_help_panel=_S, help="Once, at this wall time: '2026-12-01 09:00'."),
]
InOpt = Annotated[
    str | None,
    typer.Option("--in", rich_help_panel=_S, help="Once, after this delay: 10m, 2h, 1d."),
]
EveryOpt = Annotated[
    str | None,
    typer.Option("--every", rich_help_panel=_S, help="Every interval of elapsed time: 30m, 1h30m."),
]
DailyOpt = Annotated[
    str | None,
    typer.Option("--daily", rich_help_panel=_S, help="Every day at these times: 09:00[,18:00]."),
]
WeeklyOpt = Annotated[
    str | None,
    typer.Option(
        "--weekly", rich_help_panel=_S, help="On these weekdays at these times: mon,wed@09:00."
    ),
]
MonthlyOpt = Annotated[
    str | None,
    typer.Option(
        "--monthly", rich_help_panel=_S, help="On this day (clamped to month end): 31@09:00."
    ),
]
CronOpt = Annotated[
    str | None,
    typer.Option("--cron", rich_help_panel=_S, help="A 5-field cron expression: '0 9 * * 1-5'."),
]
StartOpt = Annotated[
    str | None, typer.Option("--start", rich_help_panel=_S, help="No firing before this wall time.")
]
EndOpt = Annotated[
    str | None, typer.Option("--end", rich_help_panel=_S, help="No firing after this wall time.")
]
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", rich_help_panel=_S, help="IANA time zone; default: the user's."),
]
TaskId = Annotated[int, typer.Argument(help="The task id.", show_default=False)]


def parse_context(items: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` options -> a dict (later keys win)."""
    context: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"must look like KEY=VALUE: {item!r}", field="--context")
        context[key.strip()] = value
    return context


def upcoming(task: AITask, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings of an active or paused task, from ``now``."""
    if task.status not in (TaskStatus.ACTIVE, TaskStatus.PAUSED):
        return []
    return preview(parse_schedule(task.schedule), now, count)


@app.command("add")
def add(
    ctx: typer.Context,
    title: Annotated[
        str | None,
        typer.Argument(
            help="Short title; the notification's title (not with --say).", show_default=False
        ),
    ] = None,
    say: Annotated[
        str | None,
        typer.Option(
            help="The task in plain English, instead of TITLE and a schedule option: "
            "'remind me every weekday at 8:30 to stretch'. Shows the reading and asks."
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="With --say: create without asking.")
    ] = False,
    instruction: Annotated[str, typer.Option(help="What the assistant should do.")] = "",
    task_type: Annotated[
        str, typer.Option("--type", help="reminder, automated_task or periodic_task.")
    ] = "reminder",
    channel: Annotated[
        list[str] | None,
        typer.Option(
            help="Where notifications go (repeatable): in_app or the user's channels "
            "(pa channel list); default: in_app."
        ),
    ] = None,
    catch_up: Annotated[
        str, typer.Option(help="After downtime: once, skip or all missed firings.")
    ] = "once",
    max_retries: Annotated[int | None, typer.Option(help="Retries of a failed run.")] = None,
    context: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE given to the assistant (repeatable).")
    ] = None,
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
    """Create a task with one schedule option, or said in plain English (--say)."""
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
    if say is not None:
        if title is not None or options != ScheduleOptions():
            raise ValidationError(
                "give --say alone, without TITLE or schedule options", field="--say"
            )
        overrides = _typed(
            ctx,
            description=instruction,
            task_type=task_type,
            notification_channels=channel,
            catch_up=catch_up,
            max_retries=max_retries,
            ai_context=parse_context(context),
        )
        from personal_assistant.cli.task_say import add_said

        add_said(say, overrides, yes=yes, user=user, as_json=as_json)
        return
    if title is None:
        raise ValidationError("give a TITLE and a schedule option, or --say TEXT", field="title")
    to_schedule_dict(options, session.now())  # bad options are named before the database opens
    ai_context = parse_context(context)

    async def work(app: Assistant, owner: User) -> AITask:
        # ``--in`` counts from the creation, on the clock that checks it: counted from the
        # command's start, ``--in 1s`` was "in the past" once opening the database took 1 s.
        return await app.tasks.create_task(
            owner.id,
            title,
            schedule=to_schedule_dict(options, app.clock()),
            description=instruction,
            task_type=task_type,
            ai_context=ai_context,
            notification_channels=channel,
            catch_up=catch_up,
            max_retries=max_retries,
        )

    task = session.run_for(user, work)
    if as_json:
        print_json(views.task(task))
        return
    typer.echo(f"created task {task.id}: {task.title}")
    typer.echo(
        block(
            [
                ("schedule", describe(parse_schedule(task.schedule))),
                ("next run", when(task.next_run_at, task.timezone)),
            ]
        )
    )


def _typed(ctx: typer.Context, **options: object) -> dict[str, object]:
    """The options given on the command line, by ``create_task``'s names (``add --say``)."""
    names = {"description": "instruction", "notification_channels": "channel"}
    names["ai_context"] = "context"
    found: dict[str, object] = {}
    for key, value in options.items():
        source = ctx.get_parameter_source(names.get(key, key))
        if source is not None and source.name == "COMMANDLINE":
            found[key] = value
    return found


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="active, paused, completed or failed.")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many tasks (a page).")
    ] = 100,
    after: Annotated[
        int | None,
        typer.Option(min=0, help="Only tasks with a greater id: the next page's cursor."),
    ] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the user's tasks by id, a page at a time (--limit, --after)."""

    def work(reads: QuickReads, owner: int) -> tuple[list[TaskRow], bool]:
        def page(size: int, cursor: int | None) -> list[TaskRow]:
            return reads.task_page(
                TaskPage.checked(
                    owner, status=status, task_type=task_type, limit=size, after_id=cursor
                )
            )

        found = page(limit, after)
        return found, len(found) == limit and bool(page(1, found[-1].id))

    found, more = session.read_for(user, work)
    if as_json:
        print_json([views.task(t) for t in found])
    else:
        typer.echo(tables.tasks(found))
    if more:
        source = ctx.get_parameter_source("user")  # typed, or PA_USER (not repeated)
        typed = source is not None and source.name == "COMMANDLINE"
        options = [("--status", status), ("--type", task_type), ("--user", user if typed else None)]
        options += [("--limit", None if limit == 100 else limit), ("--json", as_json or None)]
        typer.echo(next_page("pa task list", len(found), found[-1].id, options), err=True)


@app.command("show")
def show(task_id: TaskId, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Show a task, its next 5 firings and its last 5 runs."""

    async def work(app: Assistant, owner: User) -> tuple[AITask, list[TaskRun]]:
        task = await app.tasks.get_task(task_id, owner.id)
        return task, await app.tasks.list_runs(owner.id, task_id=task_id, limit=5)

    task, runs = session.run_for(user, work)
    firings = upcoming(task, session.now(), 5)
    if as_json:
        print_json(
            {
                "task": views.task(task),
                "next_firings": [iso(f) for f in firings],
                "recent_runs": [views.run(r) for r in runs],
            }
        )
        return
    context = ", ".join(f"{k}={v}" for k, v in task.ai_context.items())
    typer.echo(
        block(
            [
                ("task", task.id),
                ("title", task.title),
                ("instruction", task.description or None),
                ("type", task.task_type),
                ("status", task.status),
                ("reason", task.status_reason),
                ("schedule", describe(parse_schedule(task.schedule))),
                ("next run", when(task.next_run_at, task.timezone)),
                ("last run", when(task.last_run_at, task.timezone)),
                ("channels", task.notification_channels),
                ("catch-up", task.catch_up),
                ("max retries", task.max_retries),
                ("failures", task.consecutive_failures),
                ("context", context or None),
                ("created", when(task.created_at, task.timezone)),
            ]
        )
    )
    typer.echo("\nnext firings:")
    typer.echo(tables.firings(firings, task.timezone))
    typer.echo("\nlast runs:")
    typer.echo(tables.runs(runs, task.timezone))


@app.command("preview")
def preview_(
    task_id: Annotated[
        int | None,
        typer.Argument(help="A task id; or give schedule options instead.", show_default=False),
    ] = None,
    count: Annotated[
        int, typer.Option("-n", "--count", min=1, max=1000, help="How many firings.")
    ] = 5,
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
    """Print the next firings of a task or of schedule options, creating nothing."""
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
    now = session.now()
    schedule: Schedule
    if task_id is not None:
        if options != ScheduleOptions():
            raise ValidationError("give a task id or schedule options, not both", field="schedule")
        schedule = parse_schedule(session.run_for(user, _task_schedule(task_id)))
    else:
        data = to_schedule_dict(options, now)
        if "timezone" not in data:
            data["timezone"] = session.run_for(user, _timezone)
        schedule = with_interval_anchor(parse_schedule(data), now)
        validate_for_creation(schedule, now)
    firings = preview(schedule, now, count)
    if as_json:
        print_json(
            {
                "schedule": schedule_to_dict(schedule),
                "description": describe(schedule),
                "timezone": schedule.timezone,
                "firings": [iso(f) for f in firings],
            }
        )
        return
    typer.echo(f"schedule: {describe(schedule)}")
    typer.echo(tables.firings(firings, schedule.timezone))


def _task_schedule(task_id: int) -> session.OwnerWork[dict[str, object]]:
    async def work(app: Assistant, owner: User) -> dict[str, object]:
        return dict((await app.tasks.get_task(task_id, owner.id)).schedule)

    return work


async def _timezone(app: Assistant, owner: User) -> str:
    return owner.timezone
