"""``pa user`` and ``pa task``: the groups whose commands come from several modules.

``pa user`` is put together the first time it is used: its builder imports its modules and adds
their commands to ``users.app``, once. ``pa task`` is lazy at its own level
(:class:`~personal_assistant.cli.lazy.LazyGroup`): :data:`TASK_COMMANDS` names, for each of its
commands, the ``typer.Typer`` it is registered on and its line of help, so that ``pa task list``
imports :mod:`~personal_assistant.cli.tasks` alone and typer converts ``list`` alone, and
``pa task --help`` imports none of them.
"""

from __future__ import annotations

import functools

import typer

from personal_assistant.cli import lazy


@functools.cache
def user() -> typer.Typer:
    """``pa user``: add, edit, remove, list, then ``quiet``, ``digest`` and ``key``."""
    from personal_assistant.cli import channels, digests, keys, users

    channels.register(users.app)
    digests.register(users.app)
    keys.register(users.app)
    return users.app


_TASKS = "personal_assistant.cli.tasks:app"
_EDIT = "personal_assistant.cli.task_edit:app"
_ACTIONS = "personal_assistant.cli.task_actions:app"

#: ``pa task``'s commands, in the order ``pa task --help`` lists them, with the first line of
#: each one's help (tests/unit/test_cli_lazy.py checks that they are the commands' own).
TASK_COMMANDS: dict[str, lazy.Entry] = {
    "add": lazy.Registered(
        _TASKS, "Create a task with one schedule option, or said in plain English (--say)."
    ),
    "list": lazy.Registered(
        _TASKS, "List the user's tasks by id, a page at a time (--limit, --after)."
    ),
    "show": lazy.Registered(_TASKS, "Show a task, its next 5 firings and its last 5 runs."),
    "preview": lazy.Registered(
        _TASKS, "Print the next firings of a task or of schedule options, creating nothing."
    ),
    "edit": lazy.Registered(
        _EDIT, "Change a task's fields (only those given), keeping its id and runs."
    ),
    "pause": lazy.Registered(_ACTIONS, "Pause an active task: it stops firing until resumed."),
    "resume": lazy.Registered(
        _ACTIONS, "Resume a paused (or finished) task from its next firing after now."
    ),
    "run": lazy.Registered(_ACTIONS, "Queue a run of the task now, besides its schedule."),
    "delete": lazy.Registered(
        _ACTIONS, "Delete a task with its runs and notifications (asks first unless --yes)."
    ),
}


class _TaskCommands(lazy.LazyGroup):
    """``pa task``: the commands of :data:`TASK_COMMANDS`, each built when used."""

    entries = TASK_COMMANDS


#: ``pa task``, added to ``pa`` by its table (:data:`personal_assistant.cli.main.COMMANDS`).
task = typer.Typer(
    cls=_TaskCommands,
    help="AI tasks: create, edit, inspect, pause, run, delete.",
    no_args_is_help=True,
)
