"""Commands of ``pa`` that are imported only when they are used.

``pa task list`` should not pay for the other commands: importing every CLI module took about
110 ms at each start, and typer building the click commands of all ~100 of them about 40 ms
more. :class:`LazyGroup` is click's "lazily loading subcommands"
for typer: it holds a table ``name -> where the command lives and its line of help``, imports a
command's module and builds its click command only when that name is resolved, and lists the
table's lines for ``pa --help`` and the completion of ``pa <TAB>`` without importing anything.
A group of ``pa`` may be one too (``pa task``): then ``pa task list`` imports the module of
``list`` alone and typer converts that one command, not its eight siblings.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from typer import _click as click  # typer vendors click: these are the classes it builds on
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo


def _find(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Group:
    """A command group. ``target`` (``"module:attribute"``) names its ``typer.Typer``, or a
    function that returns it (a group that other modules add commands to); ``help`` is the
    first paragraph of the group's own help, the line ``pa --help`` shows."""

    target: str
    help: str

    def add_to(self, app: typer.Typer, name: str) -> None:
        found = _find(self.target)
        app.add_typer(found if isinstance(found, typer.Typer) else found(), name=name)


@dataclass(frozen=True)
class Command:
    """A lone command. ``target`` names its function; ``help`` is its whole help (one line)."""

    target: str
    help: str
    context_settings: Mapping[str, Any] | None = None

    def add_to(self, app: typer.Typer, name: str) -> None:
        settings = dict(self.context_settings) if self.context_settings is not None else None
        app.command(name, help=self.help, context_settings=settings)(_find(self.target))


@dataclass(frozen=True)
class Registered:
    """A command that its module registers on a ``typer.Typer`` of its own
    (``@app.command("list")``): ``target`` (``"module:attribute"``) names that Typer, and
    ``help`` is the first paragraph of the command's help, the line its group's help shows.
    The command is found by its name among the Typer's commands, as typer names them."""

    target: str
    help: str

    def add_to(self, app: typer.Typer, name: str) -> None:
        owner: typer.Typer = _find(self.target)
        app.registered_commands.append(registered(owner, name))


def registered(owner: typer.Typer, name: str) -> CommandInfo:
    """The command ``name`` of ``owner``: the name given to ``command()``, else the one typer
    derives from its function's."""
    for info in owner.registered_commands:
        callback = info.callback
        derived = typer.main.get_command_name(callback.__name__) if callback else None
        if (info.name or derived) == name:
            return info
    raise LookupError(f"no command {name!r} is registered on {owner!r}")


Entry = Group | Command | Registered


def build(name: str, entry: Entry) -> click.Command:
    """The click command of ``entry``: registered on a typer app, as ``pa`` did at import, and
    converted by typer itself (``get_group``, as a lone command would otherwise become the
    whole app and a one-command group a command). The app has typer's default settings, those
    ``pa`` gives every command it converts (``rich_markup_mode``, ``pretty_exceptions_short``,
    ``suggest_commands``), at any depth: typer hands the root's settings down to them all."""
    holder = typer.Typer(add_completion=False)
    entry.add_to(holder, name)
    return typer.main.get_group(holder).commands[name]


class _Placeholder(TyperCommand):
    """Stands for a command not built yet: its name, its line of help and its entry."""

    def __init__(self, name: str, entry: Entry) -> None:
        super().__init__(name, help=entry.help)
        self.entry = entry


class LazyGroup(TyperGroup):
    """A typer group whose commands are the :attr:`entries` of a subclass, built when resolved.

    ``list_commands`` is TyperGroup's: the names in the order of the table. Unknown names fail
    as in any group ("No such command", exit 2), with typer's "Did you mean" among them all.
    """

    entries: ClassVar[Mapping[str, Entry]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        for name, entry in self.entries.items():
            self.add_command(_Placeholder(name, entry))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Placeholder) and not self._listing:
            command = self.commands[cmd_name] = build(cmd_name, command.entry)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with self._placeholders():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        with self._placeholders():
            return super().shell_complete(ctx, incomplete)

    @contextmanager
    def _placeholders(self) -> Iterator[None]:
        """While this group's help or completion lists its commands, a command not built yet
        is shown by its placeholder: a name and a line of help need no import."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False
