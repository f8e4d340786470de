"""``pa task edit``, ``pa task list`` pages, ``--channel`` checks, ``pa user edit|remove``,
``pa --version`` and shell completion, run as a user runs them (``pa`` as a subprocess)."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from personal_assistant import __version__
from support.cli import PA, Pa, ready

pytestmark = pytest.mark.e2e


@pytest.fixture
def pa(tmp_path: Path) -> Pa:
    return ready(tmp_path)


def _count(tmp_path: Path, sql: str, *params: object) -> int:
    with sqlite3.connect(tmp_path / "pa.db") as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def test_edit_changes_title_and_schedule_and_keeps_the_runs(pa: Pa) -> None:
    task = pa.json("task", "add", "Stand up", "--daily", "09:00", "--instruction", "Say hi")
    run = pa.json("task", "run", str(task["id"]))
    out = pa.ok("task", "edit", str(task["id"]), "--title", "Stand-up", "--weekly", "mon@10:30")
    assert out.startswith(f"updated task {task['id']} (title, schedule): Stand-up\n")
    assert "weekly on mon at 10:30 (Europe/Paris)" in out
    firings = out.split("next firings:\n")[1].splitlines()
    assert firings[0].split() == ["#", "UTC", "LOCAL", "(Europe/Paris)"]
    local = [line.split()[3:6] for line in firings[1:]]  # # UTC-date UTC-time | day date time
    assert [(day, at) for day, _date, at in local] == [("Mon", "10:30")] * 3

    shown = pa.json("task", "show", str(task["id"]))
    assert shown["task"]["title"] == "Stand-up"
    assert shown["task"]["instruction"] == "Say hi"  # not given: unchanged
    assert shown["task"]["schedule"]["kind"] == "weekly"
    assert [r["id"] for r in shown["recent_runs"]] == [run["id"]]  # the same task, its history


def test_edit_json_gives_the_task_and_its_next_three_firings(pa: Pa) -> None:
    task = pa.json("task", "add", "Check", "--every", "2h")
    edited = pa.json("task", "edit", str(task["id"]), "--tz", "Asia/Tokyo", "--max-retries", "5")
    assert (edited["task"]["id"], edited["task"]["max_retries"]) == (task["id"], 5)
    assert edited["task"]["timezone"] == "Asia/Tokyo"
    assert edited["task"]["schedule"]["every_seconds"] == 7200  # --tz alone keeps the kind
    fires = [datetime.fromisoformat(f) for f in edited["next_firings"]]
    assert len(fires) == 3 and fires[0].isoformat() == edited["task"]["next_run_at"]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(fires)] == [7200] * 2


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--max-retries", "99"), "max_retries"),
        (("--type", "chore"), "task_type"),
        (("--title", " "), "title"),
        (("--catch-up", "never"), "catch_up"),
        (("--daily", "25:00"), "schedule.times"),
        (("--daily", "09:00", "--cron", "0 9 * * *"), "schedule"),
        (("--context", "novalue"), "--context"),
        ((), "task"),
    ],
)
def test_a_bad_edit_names_the_field_and_changes_nothing(
    pa: Pa, args: tuple[str, ...], field: str
) -> None:
    task = pa.json("task", "add", "Keep", "--daily", "09:00")
    error = pa.fails(2, "task", "edit", str(task["id"]), *args)
    assert error.startswith(f"error: {field}: ")
    assert pa.json("task", "show", str(task["id"]))["task"] == task


def test_edit_of_a_missing_task_is_not_found(pa: Pa) -> None:
    assert pa.fails(3, "task", "edit", "999", "--title", "x").startswith("error: task_id: ")


def test_list_says_when_more_tasks_exist_and_how_to_list_them(pa: Pa) -> None:
    ids = [pa.json("task", "add", f"T{n}", "--every", "1h")["id"] for n in range(5)]
    first = pa("task", "list", "--limit", "2", "--json")
    assert first.returncode == 0
    assert [t["id"] for t in json.loads(first.stdout)] == ids[:2]
    hint = f"pa task list --after {ids[1]} --limit 2 --json"
    assert first.stderr == f"showing 2 tasks; more exist. Next page: {hint}\n"
    second = pa("task", "list", "--limit", "2", "--after", str(ids[1]))
    assert [line.split()[0] for line in second.stdout.splitlines()[1:]] == [
        str(i) for i in ids[2:4]
    ]
    assert f"--after {ids[3]} --limit 2" in second.stderr
    last = pa("task", "list", "--limit", "2", "--after", str(ids[3]))
    assert (last.returncode, last.stderr) == (0, "")  # the last page says nothing more
    assert [line.split()[0] for line in last.stdout.splitlines()[1:]] == [str(ids[4])]
    exact = pa("task", "list", "--limit", "5")
    assert exact.stderr == ""  # exactly a page: nothing more to list


def test_an_unknown_channel_is_refused_naming_it(pa: Pa) -> None:
    pa.ok("channel", "add", "hook", "json://127.0.0.1:9/x")
    add = pa.fails(2, "task", "add", "t", "--daily", "09:00", "--channel", "pigeon")
    assert add.startswith("error: notification_channels: unknown channel 'pigeon'")
    assert "hook" in add and "in_app" in add  # the names the user may give
    task = pa.json("task", "add", "t", "--daily", "09:00", "--channel", "hook")
    edit = pa.fails(2, "task", "edit", str(task["id"]), "--channel", "in_app", "--channel", "sms2")
    assert edit.startswith("error: notification_channels: unknown channel 'sms2'")
    edited = pa.json("task", "edit", str(task["id"]), "--channel", "in_app", "--channel", "hook")
    assert edited["task"]["notification_channels"] == ["in_app", "hook"]


def test_user_edit_changes_only_the_fields_given(pa: Pa) -> None:
    before = pa.json("user", "edit", "1", "--email", "ada@example.org")
    after = pa.json("user", "edit", "1", "--name", "Ada L.", "--tz", "Asia/Tokyo", "--admin")
    assert (after["display_name"], after["timezone"], after["is_admin"]) == (
        "Ada L.",
        "Asia/Tokyo",
        True,
    )
    assert after["email"] == before["email"] == "ada@example.org"
    assert pa.json("user", "edit", "1", "--email", "")["email"] is None
    assert pa.fails(2, "user", "edit", "1", "--phone", "12").startswith("error: phone: ")
    assert pa.fails(2, "user", "edit", "1", "--timezone", "Mars/Base").startswith(
        "error: timezone: unknown time zone"
    )
    assert pa.fails(3, "user", "edit", "7", "--name", "x").startswith("error: user_id: ")
    human = pa.ok("user", "edit", "1", "--phone", "+33612345678")
    assert "updated user 1" in human and "+33612345678" in human


def test_user_remove_takes_the_users_things_and_leaves_the_others(pa: Pa, tmp_path: Path) -> None:
    bob = pa.json("user", "add", "Bob")
    bobs = str(bob["id"])
    pa.ok("channel", "add", "hook", "json://127.0.0.1:9/x", "--user", bobs)
    task = pa.json("task", "add", "His", "--daily", "08:00", "--user", bobs, "--channel", "hook")
    pa.ok("task", "run", str(task["id"]), "--user", bobs)
    ada_task = pa.json("task", "add", "Hers", "--daily", "08:00", "--user", "1")
    pa.ok("task", "run", str(ada_task["id"]), "--user", "1")

    unsure = subprocess.run(
        [*PA, "user", "remove", bobs], input="n\n", env=pa.env, capture_output=True, text=True
    )
    assert f"Remove user {bobs} ('Bob') with 1 task(s), 1 run(s)" in unsure.stderr
    assert unsure.returncode == 1 and "not removed: pass --yes" in unsure.stderr
    removed = pa.json("user", "remove", bobs, "--yes")
    assert (removed["tasks"], removed["runs"], removed["channels"]) == (1, 1, 1)

    assert [u["display_name"] for u in pa.json("user", "list")] == ["Ada"]
    for table in ("ai_tasks", "notification_channels"):
        assert _count(tmp_path, f"SELECT count(*) FROM {table} WHERE user_id = ?", bob["id"]) == 0
    assert _count(tmp_path, "SELECT count(*) FROM task_runs WHERE task_id = ?", task["id"]) == 0
    assert [t["id"] for t in pa.json("task", "list", "--user", "1")] == [ada_task["id"]]
    assert len(pa.json("runs", "--user", "1")) == 1
    assert pa.fails(3, "user", "remove", bobs, "--yes").startswith("error: user_id: ")


def test_version_is_printed() -> None:
    done = subprocess.run([*PA, "--version"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, f"pa {__version__}\n")


def _in_bash(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in bash (the shell completion is for) with HOME in ``tmp_path``; the trailing
    ``true`` keeps bash the parent of ``pa``, where the shell is detected."""
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{Path(PA[0]).parent}:/usr/bin:/bin"}
    return subprocess.run(
        ["bash", "-c", f"{script}; true"], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.skipif(len(PA) != 1, reason="completion is for the installed `pa` script")
def test_shell_completion_is_shown_installed_and_completes(tmp_path: Path) -> None:
    shown = _in_bash(tmp_path, "pa --show-completion")
    assert "_pa_completion()" in shown.stdout and "_PA_COMPLETE=complete_bash" in shown.stdout
    installed = _in_bash(tmp_path, "pa --install-completion")
    assert "bash completion installed in" in installed.stdout, installed.stderr
    assert "_pa_completion()" in (tmp_path / ".bash_completions" / "pa.sh").read_text()
    assert ".bash_completions/pa.sh" in (tmp_path / ".bashrc").read_text()
    words = _in_bash(tmp_path, "_PA_COMPLETE=complete_bash COMP_WORDS='pa task e' COMP_CWORD=2 pa")
    assert words.stdout.split() == ["edit"]
