"""``pa`` imports a command's module only when that command is used
(:mod:`personal_assistant.cli.lazy`): ``pa task list`` does not pay for ``pa run`` or
``pa channel``, nor for ``pa task edit`` or ``pa task delete``, and ``pa --help`` and
``pa task --help`` list their tables without importing any command."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup

from personal_assistant import __version__
from personal_assistant.cli import lazy
from personal_assistant.cli.groups import TASK_COMMANDS
from personal_assistant.cli.main import COMMANDS, app

#: Runs ``pa ARGS`` in a fresh interpreter, then prints as its last line of stderr the exit code
#: and the modules of ``personal_assistant.cli`` it imported.
PROBE = """
import json, sys
from personal_assistant.cli.main import main
sys.argv = ["pa", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as done:
    code = done.code
cli = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("personal_assistant.cli."))
print(json.dumps({"exit": code, "cli": cli}), file=sys.stderr)
"""


class Pa:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        *errors, last = done.stderr.splitlines()
        found = json.loads(last)
        self.exit: int = found["exit"]
        self.cli: list[str] = found["cli"]
        self.out = done.stdout
        self.err = "\n".join(errors)


def pa(*args: str, **env: str) -> Pa:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "80", **env},
    )
    return Pa(done)


def listed(help_text: str) -> list[str]:
    """The command names of the rich "Commands" panel of a help text."""
    panel = help_text.split("─ Commands ─", 1)[1]
    rows = [line[2:] for line in panel.splitlines() if line.startswith("│ ")]
    return [row.split()[0] for row in rows if not row.startswith(" ")]


def test_importing_pa_imports_no_command() -> None:
    probe = "import sys, personal_assistant.cli.main as m; print(sorted(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = [m for m in ast.literal_eval(done.stdout) if m.startswith("personal_assistant.cli.")]
    assert loaded == ["personal_assistant.cli.lazy", "personal_assistant.cli.main"]


def test_help_lists_the_table_in_its_order_and_imports_no_command() -> None:
    shown = pa("--help")
    assert shown.exit == 0, shown.err
    assert listed(shown.out) == list(COMMANDS)
    assert listed(shown.out)[:3] == ["runs", "notifications", "export"]
    assert "Is the system making progress? Exit 1 if not." in shown.out
    assert shown.cli == ["lazy", "main"]
    bare = pa()  # no command: the same help, exit 2
    assert (bare.exit, listed(bare.out), bare.cli) == (2, list(COMMANDS), ["lazy", "main"])


def test_task_help_lists_its_table_and_imports_none_of_its_commands() -> None:
    shown = pa("-v", "task", "--help")
    assert shown.exit == 0, shown.err
    assert listed(shown.out) == list(TASK_COMMANDS)
    assert listed(shown.out)[:2] == ["add", "list"]
    assert "Pause an active task: it stops firing until resumed." in shown.out
    assert shown.cli == ["groups", "lazy", "main"]
    bare = pa("task")  # no command: the same help, exit 2
    assert (bare.exit, listed(bare.out), bare.cli) == (2, list(TASK_COMMANDS), shown.cli)


def test_task_list_imports_its_module_and_no_other_command(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PA_USER", raising=False)
    here = {"DATABASE_URL": sqlite_url, "PA_HOME": str(tmp_path)}
    for args in (("user", "add", "Ada"), ("task", "add", "Stretch", "--every", "1h")):
        done = pa(*args, **here)
        assert done.exit == 0, done.err
    shown = pa("task", "list", **here)
    assert shown.exit == 0, shown.err
    assert shown.out.splitlines()[1].split()[:2] == ["1", "Stretch"]
    assert "tasks" in shown.cli
    assert {"task_edit", "task_actions"}.isdisjoint(shown.cli), shown.cli
    others = {"activity", "processes", "channels", "calendars", "exports", "keys", "digests"}
    assert others.isdisjoint(shown.cli), shown.cli
    assert {"doctor", "serve", "alerts", "metrics", "db", "status"}.isdisjoint(shown.cli)


def test_a_task_command_imports_the_module_that_registers_it() -> None:
    shown = pa("task", "delete", "--help")
    assert shown.exit == 0, shown.err
    assert "Delete a task with its runs and notifications" in shown.out
    assert "--yes" in shown.out
    assert "task_actions" in shown.cli
    assert {"tasks", "task_edit"}.isdisjoint(shown.cli), shown.cli
    edit = pa("task", "edit", "--help")
    assert edit.exit == 0, edit.err
    assert {"task_edit", "tasks"} <= set(edit.cli)  # edit takes add's schedule options
    assert "task_actions" not in edit.cli


def test_user_has_the_commands_other_modules_add() -> None:
    shown = pa("user", "--help")
    assert listed(shown.out) == ["add", "edit", "remove", "list", "quiet", "digest", "key"]
    assert "tasks" not in shown.cli and "activity" not in shown.cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tsk",), "No such command 'tsk'. Did you mean 'task'?"),
        (("stat",), "No such command 'stat'. Did you mean 'status'?"),
        (("nope",), "No such command 'nope'."),
        (("task", "nope"), "No such command 'nope'."),
        (("task", "lst"), "No such command 'lst'. Did you mean 'list'?"),
        (("task", "dlete"), "No such command 'dlete'. Did you mean 'delete'?"),
        (("user", "key", "nope"), "No such command 'nope'."),
    ],
)
def test_an_unknown_command_fails_with_exit_2(args: tuple[str, ...], message: str) -> None:
    failed = pa(*args)
    assert failed.exit == 2
    assert message in failed.err
    if len(args) == 1:
        assert failed.cli == ["lazy", "main"]
    if args[0] == "task":
        assert failed.cli == ["groups", "lazy", "main"]


def test_version_imports_no_command() -> None:
    shown = pa("--version")
    assert (shown.exit, shown.out, shown.cli) == (0, f"pa {__version__}\n", ["lazy", "main"])


def test_completion_lists_the_table_and_resolves_a_group() -> None:
    names = pa(_PA_COMPLETE="complete_bash", COMP_WORDS="pa ", COMP_CWORD="1")
    assert names.out.split() == list(COMMANDS)
    assert names.cli == ["lazy", "main"]
    t = pa(_PA_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="pa t")
    assert '"task":"AI tasks\\\\: create, edit, inspect, pause,..."' in t.out
    edit = pa(_PA_COMPLETE="complete_bash", COMP_WORDS="pa task e", COMP_CWORD="2")
    assert edit.out.split() == ["edit"]
    assert edit.cli == ["groups", "lazy", "main"]
    commands = pa(_PA_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="pa task ")
    assert '"pause":"Pause an active task\\\\: it stops firing..."' in commands.out
    assert commands.cli == ["groups", "lazy", "main"]


def test_completion_of_a_task_command_builds_it_alone() -> None:
    options = pa(_PA_COMPLETE="complete_bash", COMP_WORDS="pa task list --", COMP_CWORD="3")
    offered = ["--status", "--type", "--limit", "--after", "--user", "--json", "--help"]
    assert options.out.split() == offered
    assert "tasks" in options.cli
    assert {"task_edit", "task_actions"}.isdisjoint(options.cli), options.cli


def test_each_entry_builds_what_the_table_says() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, lazy.LazyGroup)
    ctx = root.make_context("pa", [], resilient_parsing=True)
    for name, entry in COMMANDS.items():
        command = root.get_command(ctx, name)
        assert command is not None and command.name == name
        assert root.get_command(ctx, name) is command  # built once
        help_text = inspect.cleandoc(command.help or "")
        if isinstance(entry, lazy.Group):
            # a one-command group (db, metrics) stays a group, without completion options
            assert isinstance(command, TyperGroup), name
            assert help_text.split("\n\n")[0] == entry.help, name
            assert not any(p.name == "install_completion" for p in command.params)
        else:
            assert not isinstance(command, TyperGroup), name
            assert help_text == entry.help, name
    worker = root.get_command(ctx, "worker")
    assert worker is not None
    passed_on = worker.make_context("worker", ["--without-gossip", "x"], parent=ctx).args
    assert passed_on == ["--without-gossip", "x"]  # to Celery
    status = root.get_command(ctx, "status")
    assert status is not None and status.context_settings == {}
    assert root.get_command(ctx, "nope") is None


def test_the_lines_of_the_table_are_those_of_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``pa --help`` shows the table's lines; once built, the commands show the same ones."""
    root = typer.main.get_command(app)
    assert isinstance(root, lazy.LazyGroup)
    ctx = root.make_context("pa", [], resilient_parsing=True)
    root.get_help(ctx)
    from_the_table = capsys.readouterr().out
    for name in COMMANDS:
        root.get_command(ctx, name)
    root.get_help(ctx)
    assert capsys.readouterr().out == from_the_table
    assert "Run a Celery worker on every queue of the routing table." in from_the_table


def test_the_lines_of_the_task_table_are_those_of_its_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``pa task --help`` shows the table's lines; each command, once built, has that line as
    its own help's first paragraph, and the help of the group stays the same."""
    root = typer.main.get_command(app)
    assert isinstance(root, lazy.LazyGroup)
    ctx = root.make_context("pa", [], resilient_parsing=True)
    task = root.get_command(ctx, "task")
    assert isinstance(task, lazy.LazyGroup)
    assert inspect.cleandoc(task.help or "") == COMMANDS["task"].help
    assert task.no_args_is_help
    task_ctx = task.make_context("task", [], parent=ctx, resilient_parsing=True)
    task.get_help(task_ctx)
    from_the_table = capsys.readouterr().out
    for name, entry in TASK_COMMANDS.items():
        command = task.get_command(task_ctx, name)
        assert command is not None and command.name == name
        assert command.callback is not None, name  # built: no longer a placeholder
        assert not isinstance(command, TyperGroup), name
        assert inspect.cleandoc(command.help or "").split("\n\n")[0] == entry.help, name
        assert task.get_command(task_ctx, name) is command  # built once
    task.get_help(task_ctx)
    assert capsys.readouterr().out == from_the_table
    assert task.get_command(task_ctx, "nope") is None


def test_a_registered_command_is_found_by_its_name() -> None:
    owner = typer.Typer()

    @owner.command("first")
    def one() -> None:
        """One."""

    @owner.command()
    def second_one() -> None:
        """Two."""

    assert lazy.registered(owner, "first").callback is one
    assert lazy.registered(owner, "second-one").callback is second_one  # typer's name
    with pytest.raises(LookupError, match="no command 'one'"):
        lazy.registered(owner, "one")
