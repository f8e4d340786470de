"""The ``pa`` command: the table of its commands, each imported when used
(:mod:`personal_assistant.cli.lazy`), and the options they share.

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
from personal_assistant.cli import lazy
from personal_assistant.errors import PersonalAssistantError, exit_code

#: Passes unknown options on to Celery (``pa worker --concurrency 4``).
_TO_CELERY = {"allow_extra_args": True, "ignore_unknown_options": True}


#: ``pa``'s commands, in the order ``pa --help`` lists them, with the line it shows: a lone
#: command's whole help, a group's first paragraph (tests/unit/test_cli_lazy.py checks it).
COMMANDS: dict[str, lazy.Entry] = {
    "runs": lazy.Command(
        "personal_assistant.cli.activity:runs", "List runs of the user's tasks, newest first."
    ),
    "notifications": lazy.Command(
        "personal_assistant.cli.activity:notifications",
        "List the user's notifications, newest first (as they were before --mark-read).",
    ),
    "export": lazy.Command(
        "personal_assistant.cli.exports:export",
        "Export the user's tasks, runs and notifications to a file.",
    ),
    "import": lazy.Command(
        "personal_assistant.cli.exports:import_",
        "Import a JSON export: all of it in one transaction, or nothing.",
    ),
    "run": lazy.Command(
        "personal_assistant.cli.processes:run",
        "Migrate, then run worker, scheduler and HTTP API until Ctrl-C.",
    ),
    "worker": lazy.Command(
        "personal_assistant.cli.processes:worker",
        "Run a Celery worker on every queue of the routing table.",
        context_settings=_TO_CELERY,
    ),
    "status": lazy.Command(
        "personal_assistant.cli.status:status", "Is the system making progress? Exit 1 if not."
    ),
    "doctor": lazy.Command(
        "personal_assistant.cli.doctor:doctor",
        "Validate the running deployment: exit 0 passed, 1 warnings, 2 failures.",
    ),
    "beat": lazy.Command(
        "personal_assistant.cli.processes:beat",
        "Run the scheduler (celery beat with the database scheduler).",
        context_settings=_TO_CELERY,
    ),
    "serve": lazy.Command("personal_assistant.cli.serve:serve", "Serve the HTTP API until Ctrl-C."),
    "db": lazy.Group("personal_assistant.cli.db:app", "The database schema."),
    "user": lazy.Group("personal_assistant.cli.groups:user", "The people tasks belong to."),
    "task": lazy.Group(
        "personal_assistant.cli.groups:task",
        "AI tasks: create, edit, inspect, pause, run, delete.",
    ),
    "metrics": lazy.Group(
        "personal_assistant.cli.metrics:app", "Prometheus metrics of the deployment."
    ),
    "alerts": lazy.Group(
        "personal_assistant.cli.alerts:app",
        "Alerts told to the admin users, without Prometheus.",
    ),
    "channel": lazy.Group(
        "personal_assistant.cli.channels:app",
        "Notification channels: email, SMS, webhooks and chat, as Apprise URLs.",
    ),
    "calendar": lazy.Group(
        "personal_assistant.cli.calendars:app",
        "Calendar feeds (iCalendar/ICS URLs): their events become reminders.",
    ),
}


class _Commands(lazy.LazyGroup):
    """The root group: the commands of :data:`COMMANDS`, each built when used."""

    entries = COMMANDS


app = typer.Typer(
    cls=_Commands,
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
