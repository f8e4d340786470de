"""``pa user add|list``, and which user a per-user command acts for (``--user``/``PA_USER``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.cli import session, views
from personal_assistant.cli.output import JsonOpt, print_json, table
from personal_assistant.cli.schema import require_schema
from personal_assistant.database.engine import make_async_engine
from personal_assistant.database.models import User
from personal_assistant.errors import ValidationError
from personal_assistant.tasks.manager import AITaskManager

T = TypeVar("T")

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


async def select_user(manager: AITaskManager, user_id: int | None) -> User:
    """The user named by ``--user``/``PA_USER``, else the only user; errors name ``--user``."""
    if user_id is not None:
        return await manager.get_user(user_id)
    users = await manager.list_users()
    if len(users) == 1:
        return users[0]
    if not users:
        raise ValidationError("no user yet: create one with `pa user add NAME`", field="--user")
    raise ValidationError(
        f"{len(users)} users exist: pass --user ID or set PA_USER", field="--user"
    )


def run_as_owner(user_id: int | None, work: Callable[[AsyncEngine, User], Awaitable[T]]) -> T:
    """Await ``work(engine, owner)`` for the selected user, after checking the schema."""
    current = session.settings()
    require_schema(current.database_url)

    async def main() -> T:
        engine = make_async_engine(current.database_url, pooled=False)
        try:
            async with AITaskManager(current, engine=engine) as manager:
                owner = await select_user(manager, user_id)
            return await work(engine, owner)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Display name.")],
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number, e.g. +33612345678.")] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone, e.g. Europe/Paris.")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Create a user."""
    user = session.run(lambda m: m.create_user(name, email=email, phone=phone, timezone=tz))
    if as_json:
        print_json(views.user(user))
        return
    typer.echo(f"created user {user.id} ({user.display_name}, {user.timezone})")


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List the users."""
    users = session.run(lambda m: m.list_users())
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
