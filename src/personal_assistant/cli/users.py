"""``pa user add|list``, and the ``--user``/``PA_USER`` option of the per-user commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.cli import session, views
from personal_assistant.cli.output import JsonOpt, print_json, table

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
    as_json: JsonOpt = False,
) -> None:
    """Create a user."""
    user = session.run(lambda a: a.tasks.create_user(name, email=email, phone=phone, timezone=tz))
    if as_json:
        print_json(views.user(user))
        return
    typer.echo(f"created user {user.id} ({user.display_name}, {user.timezone})")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the users."""
    users = session.run(lambda a: a.tasks.list_users())
    if as_json:
        print_json([views.user(u) for u in users])
        return
    rows = [(u.id, u.display_name, u.timezone, u.email, u.phone, _digest(u)) for u in users]
    headers = ("ID", "NAME", "TIMEZONE", "EMAIL", "PHONE", "DIGEST")
    typer.echo(table(headers, rows, empty="no users: create one with `pa user add NAME`"))


def _digest(row: User) -> str | None:
    """``20:00 to mail`` (``pa user digest``), or None."""
    if row.digest_at is None:
        return None
    return f"{views.clock(row.digest_at)} to {row.digest_channel or 'in_app'}"
