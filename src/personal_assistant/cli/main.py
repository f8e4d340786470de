"""The ``pa`` command: ``pa db``, ``pa user``, ``pa task``, ``pa runs``, ``pa notifications``
and the process commands of :mod:`personal_assistant.cli.services`.

:func:`main` turns every :class:`~personal_assistant.errors.PersonalAssistantError` into one
line on stderr, ``error: <field>: <reason>``, and the exit code of
:func:`~personal_assistant.errors.exit_code`. Settings are read on first use, not at import.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from personal_assistant import __version__, logsetup, redaction
from personal_assistant.cli import (
    activity,
    alerts,
    calendars,
    channels,
    db,
    digests,
    exports,
    keys,
    metrics,
    services,
    task_actions,
    task_edit,
    tasks,
    users,
)
from personal_assistant.errors import PersonalAssistantError, exit_code

app = typer.Typer(
    name="pa",
    help="Personal assistant: schedule AI tasks and see what they did.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"pa {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


app.add_typer(db.app, name="db")
app.add_typer(users.app, name="user")
app.add_typer(tasks.app, name="task")
app.add_typer(metrics.app, name="metrics")
app.add_typer(alerts.app, name="alerts")
task_edit.register(tasks.app)
task_actions.register(tasks.app)
activity.register(app)
exports.register(app)
channels.register(app, users.app)
calendars.register(app)
digests.register(users.app)
keys.register(users.app)
services.register(app)


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # --verbose means our INFO events, not every SQL statement.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logsetup.protect(logging.getLogger())  # httpx logs feed URLs at INFO: never their tokens


def main() -> None:
    _configure_logging()
    try:
        app()
    except PersonalAssistantError as err:
        message = " ".join(str(err).split()) or type(err).__name__
        typer.echo(f"error: {redaction.redact(message)}", err=True)  # a second net for secrets
        sys.exit(exit_code(err))


if __name__ == "__main__":
    main()
