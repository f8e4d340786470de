"""``pa user key create|list|revoke``: the user's keys of the HTTP API.

A key is printed once, by ``create``; ``list`` shows its prefix (``pa_<id>``), never the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, iso, print_json, table, when
from personal_assistant.cli.users import UserOpt

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.app.keys import KeyInfo, NewKey
    from personal_assistant.database.models import User

app = typer.Typer(help="API keys of the HTTP API: create, list, revoke.", no_args_is_help=True)

#: Said with every new key.
SHOWN_ONCE = "Store it now: it is shown this once and cannot be shown again."


def view(key: KeyInfo) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "revoked_at": iso(key.revoked_at),
    }


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key, e.g. laptop (1-64 characters).")],
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key and print it, this once."""

    async def work(app: Assistant, owner: User) -> tuple[User, NewKey]:
        return owner, await app.keys.create(owner.id, name)

    owner, made = session.run_for(user, work)
    if as_json:
        print_json(view(made.key) | {"user_id": owner.id, "token": made.token})
        typer.echo(SHOWN_ONCE, err=True)
        return
    typer.echo(f"created API key {made.key.id} ({made.key.name}) for user {owner.id}:")
    typer.echo(made.token)
    typer.echo(SHOWN_ONCE)


@app.command("list")
def list_(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List the user's API keys, revoked ones too (their prefixes, never the keys)."""

    async def work(app: Assistant, owner: User) -> list[KeyInfo]:
        return await app.keys.list_for(owner.id)

    found = session.run_for(user, work)
    if as_json:
        print_json([view(k) for k in found])
        return
    rows = [
        (k.id, k.name, k.prefix, when(k.created_at), when(k.last_used_at), when(k.revoked_at))
        for k in found
    ]
    headers = ("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED")
    typer.echo(table(headers, rows, empty="no API keys: create one with `pa user key create NAME`"))


@app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (`pa user key list`).")],
    user: UserOpt = None,
) -> None:
    """Revoke an API key: it no longer authenticates."""

    async def work(app: Assistant, owner: User) -> KeyInfo:
        return await app.keys.revoke(owner.id, key_id)

    key = session.run_for(user, work)
    typer.echo(f"revoked API key {key.id} ({key.name}, {key.prefix}) at {when(key.revoked_at)}")


def register(users: typer.Typer) -> None:
    """Add ``key`` to ``pa user``."""
    users.add_typer(app, name="key")
