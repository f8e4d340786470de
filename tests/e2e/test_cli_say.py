"""``pa task add --say``: a task said in plain English, as a user types it (a subprocess on an
SQLite database of the test's own)."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from personal_assistant.core.phrase_model import DISAGREE, TOOL_NAME
from support.chat_server import ChatServer, tool_call
from support.cli import PA, Pa, ready

STRETCH = "remind me every weekday at 8:30 to stretch"


def _typed(cli: Pa, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``pa`` with ``answer`` typed on its standard input."""
    return subprocess.run(
        [*PA, *args], env=cli.env, input=answer, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def cli(tmp_path: Path) -> Pa:
    return ready(tmp_path)


def test_say_with_yes_creates_the_task_read(cli: Pa) -> None:
    out = cli.ok("task", "add", "--say", STRETCH, "--yes")
    assert "title:       Stretch" in out
    assert "schedule:    weekly on mon, tue, wed, thu, fri at 08:30 (Europe/Paris)" in out
    assert "next 3 firings:" in out
    assert out.count(" 08:30 CE") == 3  # three firings, in the user's zone (CET or CEST)
    assert "Create this task?" not in out
    assert "created task 1: Stretch" in out
    task = cli.json("task", "show", "1")["task"]
    assert task["schedule"] == {
        "kind": "weekly",
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "times": ["08:30"],
        "timezone": "Europe/Paris",
    }
    assert task["instruction"] == "Remind me to stretch"


def test_answering_no_creates_nothing(cli: Pa) -> None:
    done = _typed(cli, "n\n", "task", "add", "--say", STRETCH)
    assert done.returncode == 0, done.stderr
    assert "Create this task? [y/N]" in done.stdout
    assert "nothing created" in done.stdout
    assert cli.json("task", "list") == []


def test_answering_yes_creates_it(cli: Pa) -> None:
    done = _typed(cli, "y\n", "task", "add", "--say", STRETCH, "--catch-up", "skip")
    assert done.returncode == 0, done.stderr
    assert "created task 1: Stretch" in done.stdout
    assert cli.json("task", "show", "1")["task"]["catch_up"] == "skip"


def test_json_shows_the_proposal_its_firings_and_the_task(cli: Pa) -> None:
    shown = cli.json("task", "add", "--say", STRETCH, "--yes")
    assert shown["proposal"]["title"] == "Stretch"
    assert shown["proposal"]["timezone"] == "Europe/Paris"
    assert len(shown["next_firings"]) == 3
    assert shown["created"]["id"] == 1
    assert shown["created"]["next_run_at"] == shown["next_firings"][0]


def test_an_unsure_reading_is_a_question_and_creates_nothing(cli: Pa) -> None:
    err = cli.fails(2, "task", "add", "--say", "remind me at 4 to call mom", "--yes")
    assert err.startswith("error: text: Not sure: 4:00 may be morning or afternoon.")
    assert "Did you mean: 'Call mom' (reminder), once at " in err
    assert cli.json("task", "list") == []


def test_an_unsure_reading_is_asked_about_and_made_when_confirmed(cli: Pa) -> None:
    """Without --yes, the question is asked: the reason, the closest reading and its firings."""
    said = "remind me at 4 to call mom"
    declined = _typed(cli, "n\n", "task", "add", "--say", said)
    assert declined.returncode == 0, declined.stderr
    assert declined.stdout.startswith("Not sure: 4:00 may be morning or afternoon.")
    assert "Did you mean:" in declined.stdout
    assert "next 3 firings:" in declined.stdout
    assert "Create it? [y/N]" in declined.stdout
    assert "nothing created" in declined.stdout
    assert cli.json("task", "list") == []

    accepted = _typed(cli, "y\n", "task", "add", "--say", said)
    assert accepted.returncode == 0, accepted.stderr
    assert "created task 1: Call mom" in accepted.stdout
    task = cli.json("task", "show", "1")["task"]
    assert task["schedule"]["kind"] == "once"
    at = datetime.fromisoformat(task["schedule"]["at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (at.hour, at.minute) == (16, 0)  # the afternoon reading


def test_every_other_tuesday_is_read_on_the_wall_clock(cli: Pa) -> None:
    out = cli.ok("task", "add", "--say", "every other Tuesday at 6pm put out the bins", "--yes")
    assert "schedule:    every 2 weeks on tue at 18:00 (Europe/Paris), from " in out
    assert out.count(" 18:00 CE") == 3  # 18:00 local each time, CET or CEST


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("remind me " * 1000, "10000 characters long"),
        ("🙂🙂🙂", "no words"),
        ("rappelle-moi demain à 9h de boire de l'eau", "English"),
    ],
)
def test_bad_requests_are_refused(cli: Pa, text: str, reason: str) -> None:
    err = cli.fails(2, "task", "add", "--say", text, "--yes")
    assert err.startswith("error: text: ")
    assert reason in err
    assert "Did you mean" not in err
    assert cli.json("task", "list") == []


def test_say_takes_no_title_nor_schedule_option(cli: Pa) -> None:
    assert "--say" in cli.fails(2, "task", "add", "Stretch", "--say", STRETCH, "--yes")
    assert "--say" in cli.fails(2, "task", "add", "--say", STRETCH, "--daily", "09:00")
    assert "error: title:" in cli.fails(2, "task", "add", "--daily", "09:00")
    assert cli.json("task", "list") == []
    # The usual form still works.
    assert "created task 1: Water" in cli.ok("task", "add", "Water", "--daily", "09:00")


def test_a_model_that_reads_otherwise_is_asked_about(cli: Pa) -> None:
    """With AGENT=openai the model reads the request too; when it reads it otherwise, both
    readings are offered and the one picked is made (here the model's)."""
    answer = {"title": "Stretch", "instruction": "Stretch", "task_type": "reminder"}
    with ChatServer() as model:
        cli.env.update(AGENT="openai", AGENT_BASE_URL=model.base_url, AGENT_MODEL="test-model")
        model.script(
            tool_call(TOOL_NAME, {**answer, "schedule": {"kind": "daily", "times": ["08:30"]}})
        )
        done = _typed(cli, "2\n", "task", "add", "--say", STRETCH)
        assert model.received[0].body["messages"][-1]["content"] == STRETCH
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(DISAGREE)
    assert "1) the offline reading:" in done.stdout
    assert "2) or the model's:" in done.stdout
    assert "read by:     the model only: check it" in done.stdout
    assert "Create which?" in done.stdout
    assert "created task 1: Stretch" in done.stdout
    assert cli.json("task", "show", "1")["task"]["schedule"] == {
        "kind": "daily",
        "times": ["08:30"],
        "timezone": "Europe/Paris",
    }
