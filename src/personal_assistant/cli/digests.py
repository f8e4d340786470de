"""``pa user digest``: a daily digest of the day's runs, at a time in the user's zone."""

from __future__ import annotations

from datetime import time
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.cli import session, views
from personal_assistant.cli.channels import parse_time
from personal_assistant.cli.output import JsonOpt, print_json, when
from personal_assistant.cli.users import UserOpt, run_as_owner
from personal_assistant.database.models import User
from personal_assistant.digests import sweep as digest_service
from personal_assistant.digests.sweep import DigestSetting
from personal_assistant.errors import ValidationError


def _apply(user_id: int | None, at: time | None, channel: str | None, off: bool) -> DigestSetting:
    """Change (or, with neither a time, a channel nor ``off``, read) the user's digest."""

    async def work(engine: AsyncEngine, owner: User) -> DigestSetting:
        shown = DigestSetting(
            owner.id, owner.timezone, owner.digest_at, owner.digest_channel, owner.next_digest_at
        )
        if not off and at is None and channel is None:
            return shown
        new_at = None
        if not off:
            new_at = at if at is not None else owner.digest_at  # --channel alone keeps it
            if new_at is None:
                raise ValidationError("give the time the digest goes out: --at HH:MM", field="at")
        async with engine.begin() as conn:
            return await digest_service.set_digest(
                conn, owner.id, new_at, channel, now=session.now()
            )

    return run_as_owner(user_id, work)


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
