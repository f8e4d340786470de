"""``pa user add|edit|remove|list``, and the ``--user``/``PA_USER`` option of the per-user
commands."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.app import views
from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, block, print_json, table
from personal_assistant.errors import ValidationError
from personal_assistant.safe_text import terminal_text

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.app.users import Footprint
    from personal_assistant.database.models import User

app = typer.Typer(help="The people tasks belong to.", no_args_is_help=True)

UserOpt = Annotated[
    int | None,
    typer.Option(
        "--user",
        "-u",
        envvar="PA_USER",
        show_envvar=True,
        help="The user to act for; default: the only user, if there is exactly one.",
    ),
]


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Display name.")],
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number, e.g. +33612345678.")] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone, e.g. Europe/Paris.")] = "UTC",
    admin: Annotated[
        bool, typer.Option("--admin", help="An admin: told of the deployment's alerts.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user."""
    user = session.run(
        lambda a: a.tasks.create_user(name, email=email, phone=phone, timezone=tz, is_admin=admin)
    )
    if as_json:
        print_json(views.user(user))
        return
    role = ", admin" if user.is_admin else ""
    typer.echo(f"created user {user.id} ({user.display_name}, {user.timezone}{role})")


@app.command("edit")
def edit(
    user_id: Annotated[int, typer.Argument(help="The user's id (`pa user list`).")],
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    email: Annotated[str | None, typer.Option(help="Email address; '' removes it.")] = None,
    phone: Annotated[
        str | None, typer.Option(help="Phone number, e.g. +33612345678; '' removes it.")
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            "--timezone",
            help="IANA time zone. Tasks keep theirs: pa task edit ID --tz.",
        ),
    ] = None,
    admin: Annotated[
        bool | None,
        typer.Option("--admin/--no-admin", help="Make the user an admin (told of alerts), or not."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user: only the fields given."""
    if (name, email, phone, tz, admin) == (None, None, None, None, None):
        raise ValidationError(
            "say what to change: --name, --email, --phone, --tz, --admin or --no-admin",
            field="--admin",
        )
    user = session.run(
        lambda a: a.users.edit(
            user_id, display_name=name, email=email, phone=phone, timezone=tz, is_admin=admin
        )
    )
    if as_json:
        print_json(views.user(user))
        return
    if (name, email, phone, tz) == (None, None, None, None):  # the admin flag alone
        now = "an admin: told of the deployment's alerts" if user.is_admin else "not an admin"
        typer.echo(f"user {user.id} ({user.display_name}) is {now}")
        return
    typer.echo(f"updated user {user.id}")
    typer.echo(_describe(user))


def _describe(user: User) -> str:
    return block(
        [
            ("name", user.display_name),
            ("email", user.email),
            ("phone", user.phone),
            ("timezone", user.timezone),
            ("admin", "yes" if user.is_admin else "no"),
            ("digest", _digest(user)),
        ]
    )


def _confirm(found: Footprint) -> bool:
    owned = (
        f"{found.tasks} task(s), {found.runs} run(s), {found.notifications} notification(s), "
        f"{found.channels} channel(s), {found.calendars} calendar(s), {found.keys} API key(s)"
    )
    try:
        return typer.confirm(
            f"Remove user {found.user_id} ({found.display_name!r}) with {owned}?",
            default=False,
            err=True,
        )
    except typer.Abort:  # no stdin: assume no
        typer.echo("", err=True)
        return False


@app.command("remove")
def remove(
    user_id: Annotated[int, typer.Argument(help="The user's id (`pa user list`).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove a user with all they own (asks first unless --yes)."""

    async def work(app: Assistant) -> Footprint | None:
        if not (yes or _confirm(await app.users.footprint(user_id))):
            return None
        return await app.users.remove(user_id)

    removed = session.run(work)
    if removed is None:
        typer.echo(f"user {user_id} not removed: pass --yes to remove without asking", err=True)
        raise typer.Exit(1)
    if as_json:
        print_json({"removed": True, **asdict(removed)})
        return
    typer.echo(
        f"removed user {removed.user_id} ({terminal_text(removed.display_name)}) with "
        f"{removed.tasks} task(s), {removed.runs} run(s), {removed.notifications} "
        f"notification(s), {removed.channels} channel(s), {removed.calendars} calendar(s) and "
        f"{removed.keys} API key(s)"
    )


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the users."""
    users = session.run(lambda a: a.tasks.list_users())
    if as_json:
        print_json([views.user(u) for u in users])
        return
    rows = [
        (
            u.id,
            u.display_name,
            u.timezone,
            u.email,
            u.phone,
            _digest(u),
            "yes" if u.is_admin else "no",
        )
        for u in users
    ]
    headers = ("ID", "NAME", "TIMEZONE", "EMAIL", "PHONE", "DIGEST", "ADMIN")
    typer.echo(table(headers, rows, empty="no users: create one with `pa user add NAME`"))


def _digest(row: User) -> str | None:
    """``20:00 to mail`` (``pa user digest``), or None."""
    if row.digest_at is None:
        return None
    return f"{views.clock(row.digest_at)} to {row.digest_channel or 'in_app'}"
