"""``pa user add|edit|list``, and the ``--user``/``PA_USER`` option of the per-user commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.app import views
from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, print_json, table
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
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
    admin: Annotated[
        bool | None,
        typer.Option("--admin/--no-admin", help="Make the user an admin (told of alerts), or not."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a user: whether they are an admin."""
    if admin is None:
        raise ValidationError("say what to change: --admin or --no-admin", field="--admin")
    user = session.run(lambda a: a.tasks.set_admin(user_id, admin))
    if as_json:
        print_json(views.user(user))
        return
    now = "an admin: told of the deployment's alerts" if user.is_admin else "not an admin"
    typer.echo(f"user {user.id} ({user.display_name}) is {now}")


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
