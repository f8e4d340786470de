"""``pa user`` and ``pa task``: the groups that other modules add commands to, put together the
first time they are used (the table of :mod:`personal_assistant.cli.main`).

Each builder imports its modules itself, so that ``pa task`` does not import those of
``pa user``, and runs once: the commands are added to the group's ``typer.Typer`` a single time.
"""

from __future__ import annotations

import functools

import typer


@functools.cache
def user() -> typer.Typer:
    """``pa user``: add, edit, remove, list, then ``quiet``, ``digest`` and ``key``."""
    from personal_assistant.cli import channels, digests, keys, users

    channels.register(users.app)
    digests.register(users.app)
    keys.register(users.app)
    return users.app


@functools.cache
def task() -> typer.Typer:
    """``pa task``: the commands of :mod:`~personal_assistant.cli.tasks`, then ``edit``, then
    pause, resume, run and delete."""
    from personal_assistant.cli import task_actions, task_edit, tasks

    task_edit.register(tasks.app)
    task_actions.register(tasks.app)
    return tasks.app
