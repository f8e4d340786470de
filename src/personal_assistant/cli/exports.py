"""``pa export`` and ``pa import``: a user's tasks, runs and notifications as a file, and back.

``pa export`` writes JSON (importable) or CSV (a zip of one file per table, for spreadsheets)
under ``EXPORT_DIR`` unless ``--out`` names a file or a directory. ``pa import FILE`` reads a
JSON export into the user named by ``--user``, or into a new user made from the export; an
invalid file imports nothing and the error names the bad value (``tasks[3].schedule.timezone``).
"""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, print_json
from personal_assistant.cli.users import UserOpt
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.database.models import User
    from personal_assistant.exports.store import Exported


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="json (importable) or csv (a zip of tasks.csv, runs.csv, notifications.csv).",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="The file to write, or a directory for a generated name; default: EXPORT_DIR.",
    ),
]


def export(
    fmt: FormatOpt = Format.JSON, out: OutOpt = None, user: UserOpt = None, as_json: JsonOpt = False
) -> None:
    """Export the user's tasks, runs and notifications to a file."""
    from personal_assistant.exports import document

    kind = document.export_format(fmt.value)

    async def work(app: Assistant, owner: User) -> Exported:
        return await app.exports.export(owner.id, kind, out=out)

    done = session.run_for(user, work)
    if as_json:
        print_json({**asdict(done), "path": str(done.path)})
        return
    typer.echo(
        f"exported {done.tasks} tasks, {done.runs} runs and {done.notifications} notifications "
        f"to {done.path}"
    )


def import_(
    file: Annotated[Path, typer.Argument(help="A JSON export written by `pa export`.")],
    user: Annotated[
        int | None,
        typer.Option(
            "--user",
            "-u",
            help="Import into this existing user; default: a new user made from the export.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a JSON export: all of it in one transaction, or nothing."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {str(file)!r}: {exc.strerror}", field="file") from None
    from personal_assistant.exports import document

    data = document.load_json(raw)
    report = session.run(lambda app: app.exports.import_(data, user_id=user))
    if as_json:
        print_json(asdict(report))
        return
    whom = f"new user {report.user_id}" if report.created_user else f"user {report.user_id}"
    typer.echo(
        f"imported {report.tasks} tasks, {report.runs} runs and {report.notifications} "
        f"notifications into {whom}"
    )
