"""``pa user digest``: a daily digest of the day's runs, at a time in the user's zone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.app import views
from personal_assistant.cli import session
from personal_assistant.cli.channels import parse_time
from personal_assistant.cli.output import JsonOpt, print_json, when
from personal_assistant.cli.users import UserOpt
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from datetime import time

    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import User
    from personal_assistant.digests.sweep import DigestSetting


def _apply(user_id: int | None, at: time | None, channel: str | None, off: bool) -> DigestSetting:
    """Change (or, with neither a time, a channel nor ``off``, read) the user's digest."""

    async def work(app: Assistant, owner: User) -> DigestSetting:
        if off:
            return await app.digests.off(owner.id)
        if at is None and channel is None:
            return app.digests.current(owner)
        return await app.digests.set(owner, at, channel)  # --channel alone keeps the time

    return session.run_for(user_id, work)


def digest(
    at: Annotated[str | None, typer.Option("--at", help="When, HH:MM in the user's zone.")] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            "--channel",
            help="in_app or one of the user's channels; default: the current one, else in_app.",
        ),
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="No daily digest.")] = False,
    user: UserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Get a daily digest of the day's runs at a time in the user's zone (no option: show it)."""
    if off and (at is not None or channel is not None):
        raise ValidationError("give --at HH:MM [--channel NAME] or --off, not both", field="--off")
    when_at = None if at is None else parse_time(at, "at")
    setting = _apply(user, when_at, channel, off)
    if as_json:
        print_json(
            {
                "user_id": setting.user_id,
                "timezone": setting.timezone,
                "digest": views.digest(setting.at, setting.channel, setting.next_at),
            }
        )
        return
    if setting.at is None:
        typer.echo(
            f"no daily digest for user {setting.user_id}"
            + ("" if off else ": set one with `pa user digest --at HH:MM`")
        )
        return
    typer.echo(
        f"daily digest for user {setting.user_id} at {views.clock(setting.at)} "
        f"({setting.timezone}) to {setting.channel}; next: "
        f"{when(setting.next_at, setting.timezone)}"
    )


def register(users: typer.Typer) -> None:
    """Add ``digest`` to ``pa user``."""
    users.command("digest")(digest)
