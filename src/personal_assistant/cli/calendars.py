"""``pa calendar add|list|sync|remove``: iCalendar feeds whose events become reminders.

Feed URLs may carry secrets (private calendar links): every output here shows them masked
(``mask_feed_url``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, iso, print_json, table
from personal_assistant.cli.users import UserOpt
from personal_assistant.errors import DeliveryError, exit_code
from personal_assistant.safe_text import safe_text

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.calendars import store as calendar_store
    from personal_assistant.calendars.sync import SyncReport
    from personal_assistant.database.models import User

app = typer.Typer(
    help="Calendar feeds (iCalendar/ICS URLs): their events become reminders.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="The calendar's name, e.g. work.")]


def view(feed: calendar_store.Feed, upcoming: int | None = None) -> dict[str, object]:
    data: dict[str, object] = {
        "id": feed.id,
        "name": feed.name,
        "url": feed.masked_url,
        "lead_minutes": feed.lead_minutes,
        "horizon_days": feed.horizon_days,
        "interval_minutes": feed.interval_minutes,
        "channels": list(feed.channels),
        "status": feed.status,
        "next_sync_at": iso(feed.next_sync_at),
        "last_synced_at": iso(feed.last_synced_at),
        "last_error": _error(feed),
        "created_at": iso(feed.created_at),
    }
    if upcoming is not None:
        data["upcoming_events"] = upcoming
    return data


def _error(feed: calendar_store.Feed) -> str | None:
    """The feed's last error as printed: safe even if an older version stored it raw."""
    return None if feed.last_error is None else safe_text(feed.last_error)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the calendar, e.g. work.")],
    url: Annotated[
        str, typer.Argument(help="The feed's https://, http:// or webcal:// URL (an .ics link).")
    ],
    lead: Annotated[
        int,
        typer.Option(
            "--lead",
            metavar="MINUTES",
            help="Remind this long before each event. All-day events: at 09:00 on the day, "
            "or as many whole days before as the lead holds (1440: the day before).",
        ),
    ] = 15,
    horizon: Annotated[
        int, typer.Option("--horizon", metavar="DAYS", help="Make reminders this far ahead.")
    ] = 30,
    every: Annotated[
        int, typer.Option("--every", metavar="MINUTES", help="Fetch the feed this often.")
    ] = 60,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            metavar="NAME",
            help="Where reminders notify (repeatable): in_app or the user's channels; "
            "default: in_app.",
        ),
    ] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe to a calendar feed; its first sync runs within a minute."""
    from personal_assistant.calendars import store as calendar_store

    spec = calendar_store.validate(
        name,
        url,
        lead_minutes=lead,
        horizon_days=horizon,
        interval_minutes=every,
        channels=channel or None,
    )

    async def work(app: Assistant, owner: User) -> calendar_store.Feed:
        return await app.calendars.add(owner.id, spec)

    added = session.run_for(user, work)
    if as_json:
        print_json(view(added))
        return
    typer.echo(
        f"added calendar {added.name}: {added.masked_url}\n"
        f"reminders {added.lead_minutes} min before each event, {added.horizon_days} days "
        f"ahead, to {', '.join(added.channels)}; synced every {added.interval_minutes} min "
        f"(the first within a minute; now: `pa calendar sync {added.name}`)"
    )


@app.command("list")
def list_(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List the user's calendars (URLs masked) with their last sync."""

    async def work(app: Assistant, owner: User) -> tuple[list[calendar_store.Feed], dict[int, int]]:
        return await app.calendars.list_with_counts(owner.id)

    feeds, counts = session.run_for(user, work)
    if as_json:
        print_json([view(f, counts.get(f.id, 0)) for f in feeds])
        return
    rows = [
        (
            f.name,
            f.status,
            f"{f.lead_minutes}m",
            f"{f.interval_minutes}m",
            counts.get(f.id, 0),
            f.last_synced_at,
            f.masked_url,
            _error(f),
        )
        for f in feeds
    ]
    headers = ("NAME", "STATUS", "LEAD", "EVERY", "UPCOMING", "LAST SYNC", "URL", "ERROR")
    typer.echo(table(headers, rows, empty="no calendars: add one with `pa calendar add NAME URL`"))


@app.command("sync")
def sync(name: NameArg, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Sync a calendar now; exit 6 if its feed cannot be read (the error is kept)."""

    async def work(app: Assistant, owner: User) -> SyncReport:
        return await app.calendars.sync(owner.id, name)

    report = session.run_for(user, work)
    if as_json:
        print_json(report.as_dict())
    elif report.error is not None:
        typer.echo(f"sync of {report.name} failed: {report.error}")
    elif report.not_modified:
        typer.echo(f"synced {report.name}: not modified since the last sync")
    else:
        typer.echo(
            f"synced {report.name}: {report.created} created, {report.updated} updated, "
            f"{report.removed} removed, {report.unchanged} unchanged"
        )
    if report.error is not None:
        sys.exit(exit_code(DeliveryError("")))


@app.command("remove")
def remove(name: NameArg, user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """Unsubscribe: delete the calendar, its events and its reminders that have not run."""

    async def work(app: Assistant, owner: User) -> calendar_store.Removed:
        return await app.calendars.remove(owner.id, name)

    removed = session.run_for(user, work)
    if as_json:
        print_json(
            view(removed.feed) | {"events": removed.events, "reminders_deleted": removed.reminders}
        )
        return
    typer.echo(
        f"removed calendar {removed.feed.name} ({removed.feed.masked_url}): "
        f"{removed.events} events, {removed.reminders} reminders that had not run"
    )
