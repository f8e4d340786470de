"""``pa channel add|list|test|remove|rotate-key`` and ``pa user quiet``: where notifications
go, and when.

Channel URLs carry secrets: every output here shows them masked (``mask_apprise_url``), and
they are stored sealed with the channel keys (:mod:`personal_assistant.channel_keys`).
"""

from __future__ import annotations

import re
import sys
from datetime import time
from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, iso, print_json, table
from personal_assistant.cli.users import UserOpt
from personal_assistant.errors import ConfigurationError, DeliveryError, ValidationError, exit_code
from personal_assistant.notifications.policy import QuietHours
from personal_assistant.notifications.transports.apprise_urls import validate

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.app.channels import ChannelTest
    from personal_assistant.database.models import User
    from personal_assistant.notifications.channel_store import Channel, Rotation

app = typer.Typer(
    help="Notification channels: email, SMS, webhooks and chat, as Apprise URLs.",
    no_args_is_help=True,
)


def view(channel: Channel) -> dict[str, object]:
    return {
        "id": channel.id,
        "name": channel.name,
        "kind": channel.kind,
        "url": channel.masked_url,
        "status": channel.status,
        "broken_reason": channel.broken_reason,
        "daily_cap": channel.daily_cap,
        "created_at": iso(channel.created_at),
    }


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name tasks use, e.g. email or work-slack.")],
    url: Annotated[str, typer.Argument(help="Apprise URL, e.g. mailtos://user:pass@host.")],
    cap: Annotated[
        int | None, typer.Option("--cap", help="At most N notifications a day (local day).")
    ] = None,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a channel; the URL is checked with Apprise and shown masked from now on.

    A URL whose host (or e-mail relay) resolves to an internal address is refused, naming
    ``url``, unless OUTBOUND_ALLOW allows it.
    """
    spec = validate(name, url, cap)

    async def work(app: Assistant, owner: User) -> Channel:
        return await app.channels.add(owner.id, spec)

    added = session.run_for(user, work)
    if as_json:
        print_json(view(added))
        return
    capped = f", at most {added.daily_cap} a day" if added.daily_cap else ""
    typer.echo(f"added channel {added.name} ({added.kind}{capped}): {added.masked_url}")


@app.command("list")
def list_(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List the user's channels (URLs masked)."""

    async def work(app: Assistant, owner: User) -> list[Channel]:
        return await app.channels.list_for(owner.id)

    found = session.run_for(user, work)
    if as_json:
        print_json([view(c) for c in found])
        return
    rows = [(c.name, c.kind, c.status, c.daily_cap, c.masked_url, c.broken_reason) for c in found]
    headers = ("NAME", "KIND", "STATUS", "CAP", "URL", "REASON")
    typer.echo(table(headers, rows, empty="no channels: add one with `pa channel add NAME URL`"))


@app.command("test")
def test(
    name: Annotated[str, typer.Argument(help="The channel to send a test message to.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test message now; a broken channel that delivers is active again.

    A destination the outbound policy refuses fails at once, without connecting; a connection
    that fails says "connection failed" whatever the reason (closed, filtered, unreachable).
    """

    async def work(app: Assistant, owner: User) -> ChannelTest:
        return await app.channels.test(owner, name)

    done = session.run_for(user, work)
    delivered, reason = done.delivered, done.reason
    flag = done.reactivated if delivered else done.permanent
    if as_json:
        print_json(
            {"channel": name, "delivered": delivered, "reason": reason}
            | ({"reactivated": flag} if delivered else {"permanent": flag})
        )
    elif delivered:
        typer.echo(f"delivered to {name}" + (" (the channel is active again)" if flag else ""))
    else:
        kind = "permanent" if flag else "transient"
        typer.echo(f"failed ({kind}): {reason}")
    if not delivered:
        sys.exit(exit_code(DeliveryError("")))


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The channel to remove.")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a channel; tasks that name it fail their notifications to it, with the reason."""

    async def work(app: Assistant, owner: User) -> Channel:
        return await app.channels.remove(owner.id, name)

    removed = session.run_for(user, work)
    if as_json:
        print_json(view(removed))
        return
    typer.echo(f"removed channel {removed.name} ({removed.masked_url})")


@app.command("rotate-key")
def rotate_key(as_json: JsonOpt = False) -> None:
    """Encrypt every user's channel URLs again with the first key of CHANNEL_KEYS."""
    # Rotation (docs/howto-deploy.md): the new key first, the old ones after it, this, then
    # drop the old ones. Exit 5 lists the URLs no key decrypts: drop no key while there are.

    async def work(app: Assistant) -> Rotation:
        return await app.channels.rotate_keys()

    from personal_assistant.channel_keys import UNREADABLE

    done = session.run(work)
    unreadable = [{"id": c.id, "user_id": c.user_id, "name": c.name} for c in done.unreadable]
    if as_json:
        print_json({"rotated": done.rotated, "unreadable": unreadable})
    else:
        typer.echo(f"encrypted {done.rotated} channel URLs again with the first key")
        for channel in done.unreadable:
            typer.echo(
                f"channel {channel.name} of user {channel.user_id}: {UNREADABLE}; remove it, or "
                "keep its key in CHANNEL_KEYS"
            )
    if done.unreadable:
        sys.exit(exit_code(ConfigurationError("")))


_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_time(value: str | None, field: str) -> time:
    match = _TIME.fullmatch((value or "").strip())
    if match is None:
        raise ValidationError(f"must be a time HH:MM, got {value!r}", field=field)
    return time(int(match.group(1)), int(match.group(2)))


def quiet(
    start: Annotated[str | None, typer.Argument(help="Start, HH:MM in the user's zone.")] = None,
    end: Annotated[str | None, typer.Argument(help="End, HH:MM (may be after midnight).")] = None,
    off: Annotated[bool, typer.Option("--off", help="No quiet hours.")] = False,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set quiet hours: notifications due inside them are delivered when they end."""
    if off and (start or end):
        raise ValidationError("give START END or --off, not both", field="--off")
    hours = None if off else QuietHours(parse_time(start, "start"), parse_time(end, "end"))
    if hours is not None and hours.start == hours.end:
        raise ValidationError("must differ from start", field="end")

    async def work(app: Assistant, owner: User) -> User:
        await app.channels.set_quiet_hours(owner.id, hours)
        return owner

    owner = session.run_for(user, work)
    shown = None if hours is None else [f"{hours.start:%H:%M}", f"{hours.end:%H:%M}"]
    if as_json:
        print_json({"user_id": owner.id, "timezone": owner.timezone, "quiet_hours": shown})
        return
    if shown is None:
        typer.echo(f"quiet hours off for user {owner.id}")
    else:
        typer.echo(f"quiet hours for user {owner.id}: {shown[0]}-{shown[1]} ({owner.timezone})")


def register(users: typer.Typer) -> None:
    """Add ``quiet`` to ``pa user``."""
    users.command("quiet")(quiet)
