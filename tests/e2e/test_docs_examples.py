"""The README's and the tutorial's examples, run as written, so the docs cannot drift.

A ```console block is a session: a line starting with ``$ `` is a command, and the lines up to
the next ``$ `` are what it prints (stdout, then stderr). ``export NAME=VALUE`` sets a variable
for the commands after it; ``pa`` is the installed CLI. The README's ```python block is run as a
script and its output compared with the ```text block that follows it.

Both pages start from ``make run`` in another terminal, so each scenario starts ``pa run`` on the
embedded default in a fresh ``PA_HOME`` (no service needed), waits until the demo task's
notification is printed, as the pages show, and then runs the blocks in order.

How expected output is compared (the documented matching rule, see :func:`matches`):

* Runs of spaces compare equal: a table's columns widen with their contents.
* ``...`` matches any text, across lines too (doctest's ELLIPSIS).
* A date (``2026-11-29``, ``Sunday 29 November 2026``), a time (``08:20``,
  ``08:20:51.752233``, ``08:23:55,921``), a weekday or month name matches any of its kind, and
  ``CET`` matches ``CEST``: examples were recorded on one day, and the test runs on another.
* A time shown without a date also matches one shown with a date (``09:22`` matches
  ``2026-12-04 00:07``): the CLI names the local day when it is not the UTC day, as it is
  between 23:00 and 24:00 UTC in Paris.
* In a table cell cut short with ``…``, the text from its first date, weekday or month name
  (or the cut beginning of one) to the ``…`` matches any text: those names differ in length, so
  the cut falls elsewhere.
* A command that only reads (``pa runs``, ``pa notifications``, ``pa status``, ``pa task show``,
  ``pa task list``) shows what the worker has done by then: it is run again until its output
  matches, up to a deadline. Where the pages say "Twenty seconds after you created it", a
  person waits; the test polls.

Blocks about the real stack (the tutorial's part 2: PostgreSQL, Redis, ``start_workers.sh``)
are not run here; every other console block of the two pages must belong to a scenario below,
so a new example cannot escape the test.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cli import PA

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TUTORIAL = ROOT / "docs" / "tutorial.md"

#: Sections whose console blocks are run, in order, as one session each.
README_SECTION = "A short example"
TUTORIAL_PART_1 = "Part 1: the embedded default"
#: Sections about the real stack: not run here (PostgreSQL, Redis and start_workers.sh).
NOT_RUN = {(TUTORIAL, "Part 2: the real stack (PostgreSQL and Redis)")}

READ_ONLY = (
    ("pa", "runs"),
    ("pa", "notifications"),
    ("pa", "status"),
    ("pa", "task", "show"),
    ("pa", "task", "list"),
)
POLL_DEADLINE_S = 60.0


# --- the pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    section: str  # the ``## `` heading the block is under
    kind: str  # the fence's language: console, python, text...
    text: str


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the level-2 section of each."""
    found: list[Block] = []
    section = ""
    fence: str | None = None
    body: list[str] = []
    for line in page.read_text(encoding="utf-8").splitlines():
        if fence is None:
            if line.startswith("## "):
                section = line[3:].strip()
            elif line.startswith("```"):
                fence, body = line[3:].strip(), []
        elif line.startswith("```"):
            found.append(Block(section, fence, "\n".join(body)))
            fence = None
        else:
            body.append(line)
    return found


@dataclass(frozen=True)
class Step:
    command: str
    expected: str


def steps(console: str) -> list[Step]:
    """``$ `` lines and the output under each."""
    found: list[Step] = []
    for line in console.splitlines():
        if line.startswith("$ "):
            found.append(Step(line[2:], ""))
        elif found:
            last = found[-1]
            found[-1] = Step(last.command, f"{last.expected}{line}\n")
        else:
            raise AssertionError(f"output before any command: {line!r}")
    return found


# --- the matching rule ----------------------------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)
_NAME = "|".join([*_WEEKDAYS, *_MONTHS, *(d[:3] for d in _WEEKDAYS), *(m[:3] for m in _MONTHS)])
_TOKENS = re.compile(
    r"(?P<ellipsis>\.\.\.)"
    rf"|(?P<longdate>\b(?:{'|'.join(_WEEKDAYS)}) \d{{1,2}} (?:{'|'.join(_MONTHS)}) \d{{4}}\b)"
    r"|(?P<date>\d{4}-\d{2}-\d{2})"
    r"|(?P<time>\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)"
    rf"|(?P<name>\b(?:{_NAME})\b)"
    r"|(?P<zone>\bCES?T\b)"
)
_PATTERNS = {
    "ellipsis": r"[\s\S]*?",
    "longdate": rf"(?:{'|'.join(_WEEKDAYS)}) \d{{1,2}} (?:{'|'.join(_MONTHS)}) \d{{4}}",
    "date": r"\d{4}-\d{2}-\d{2}",
    "time": r"(?:\d{4}-\d{2}-\d{2} )?\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?",
    "name": rf"(?:{_NAME})",
    "zone": r"CES?T",
}
#: In a cell cut with "…": from the first date, name or cut name to the "…".
_CUT = re.compile(
    rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|\b(?:{_NAME})\b|\b[A-Z][a-z]+…)[^…]*…$|\b[A-Z][a-z]*…$"
)


def _normalise(text: str) -> str:
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in text.strip("\n").splitlines())
    return "\n".join(lines)


def _cut_cells(line: str) -> str:
    """Replace the variable tail of every ``…`` cell with ``...`` (see the module doc)."""
    cells = re.split(r"( {2,})", line)
    return "".join(_CUT.sub("...…", cell) if cell.endswith("…") else cell for cell in cells)


def pattern(expected: str) -> re.Pattern[str]:
    text = _normalise("\n".join(_cut_cells(line) for line in expected.splitlines()))
    parts: list[str] = []
    position = 0
    for token in _TOKENS.finditer(text):
        parts.append(re.escape(text[position : token.start()]))
        parts.append(_PATTERNS[token.lastgroup or ""])
        position = token.end()
    parts.append(re.escape(text[position:]))
    return re.compile("".join(parts))


def matches(expected: str, actual: str) -> bool:
    """Does ``actual`` satisfy ``expected`` under the module's matching rule?"""
    return pattern(expected).fullmatch(_normalise(actual)) is not None


def test_matching_rule() -> None:
    """The rule itself, on the kinds of line the pages hold."""
    assert matches("next run: 2026-11-30 08:00 UTC", "next run: 2027-06-01 07:00 UTC")
    assert matches(
        "1  2026-11-30 08:00  Mon 2026-11-30 09:00 CET",
        "1 2027-06-01 07:00 Tue 2027-06-01 09:00 CEST",
    )
    assert matches(
        "2   3   succeeded  report for Ada, Sunda…", "2 3 succeeded report for Ada, Thurs…"
    )
    assert matches("x  report for Ada, Sunday 29 Novem…  y", "x report for Ada, Thursday 03 Dec… y")
    assert matches(
        '"started_at": "2026-11-29T08:20:52.237046+00:00",',
        '"started_at": "2027-01-02T10:11:12.5+00:00",',
    )
    assert matches("Ada, Sunday 29 November 2026, 09:20", "Ada, Thursday 03 December 2026, 14:14")
    assert matches("a ...\nz", "a b\nc\nz")
    # Recorded in the morning, run at 23:07 UTC: the Paris time then names its day.
    assert matches(
        "2026-11-29 08:22 UTC (09:22 Europe/Paris)",
        "2026-12-03 23:07 UTC (2026-12-04 00:07 Europe/Paris)",
    )
    assert not matches("at 09:22 Europe/Paris", "at 2026-12-04 Europe/Paris")
    assert not matches("queued run 2 of task 3", "queued run 3 of task 3")
    assert not matches("created task 2: Drink water", "created task 2: Drink beer")


# --- running a session ----------------------------------------------------------------------


def _clean_env(home: Path) -> dict[str, str]:
    """The embedded default in ``home``: no URL, no ``PA_USER``, no ``TZ`` from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_URL") and not k.endswith("_URL_FILE") and k not in ("PA_USER", "TZ")
    }
    env["PA_HOME"] = str(home)
    return env


@contextmanager
def running_pa(home: Path, env: dict[str, str]) -> Iterator[Path]:
    """``make run`` in another terminal: ``pa run`` until its demo notification is shown."""
    log = home / "pa-run.out"
    with (
        log.open("w") as out,
        subprocess.Popen(
            [*PA, "run"], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        try:
            _wait_for(log, proc, "notification 1 [in_app, delivered]", timeout=60)
            yield log
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_for(log: Path, proc: subprocess.Popen[str], needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while needle not in log.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"pa run exited {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not printed in time:\n{log.read_text()}")
        time.sleep(0.2)


class Session:
    """One terminal: its environment and working directory, and ``$`` lines run in it."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = dict(env)

    def run(self, step: Step) -> None:
        words = shlex.split(step.command)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value
            assert step.expected == "", step
            return
        assert words[0] == "pa", f"only pa and export are run here: {step.command}"
        read_only = any(tuple(words[: len(prefix)]) == prefix for prefix in READ_ONLY) and (
            "--mark-read" not in words
        )
        started = time.monotonic()
        deadline = started + (POLL_DEADLINE_S if read_only else 0)
        while True:
            actual = self._output([*PA, *words[1:]])
            if matches(step.expected, actual) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        print(f"{time.monotonic() - started:5.1f} s  $ {step.command}")  # shown on failure
        assert matches(step.expected, actual), (
            f"$ {step.command}\n--- the page shows:\n{step.expected}--- it printed:\n{actual}"
        )

    def run_script(self, script: str, expected: str) -> None:
        actual = self._output([sys.executable, "-c", script])
        assert matches(expected, actual), (
            f"--- the page shows:\n{expected}\n--- the script printed:\n{actual}"
        )

    def _output(self, argv: list[str]) -> str:
        done = subprocess.run(
            argv,
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.stdout + done.stderr


def _console_steps(page: Path, section: str) -> list[Step]:
    found = [b for b in blocks(page) if b.kind == "console" and b.section == section]
    assert found, f"no console block under '## {section}' in {page.name}"
    return [step for block in found for step in steps(block.text)]


def test_every_console_block_is_run() -> None:
    """A console block outside the scenarios below would escape the test: refuse it."""
    covered = {(README, README_SECTION), (TUTORIAL, TUTORIAL_PART_1), *NOT_RUN}
    for page in (README, TUTORIAL):
        for block in blocks(page):
            if block.kind == "console":
                assert (page, block.section) in covered, (
                    f"{page.name}, '## {block.section}': a console block no test runs"
                )


def test_readme_example(tmp_path: Path) -> None:
    """The README's short example, CLI then Python, after ``make run`` made its demo user."""
    env = _clean_env(tmp_path)
    python = [b for b in blocks(README) if b.section == README_SECTION]
    kinds = [b.kind for b in python]
    script = python[kinds.index("python")]
    printed = python[kinds.index("python") + 1]
    assert printed.kind == "text", "the Python example's output must follow it in a text block"
    with running_pa(tmp_path, env):
        session = Session(tmp_path, env)
        for step in _console_steps(README, README_SECTION):
            session.run(step)
        Session(tmp_path, env).run_script(script.text, printed.text)


def test_tutorial_part_1(tmp_path: Path) -> None:
    """The tutorial's first part: a second terminal beside ``make run``."""
    env = _clean_env(tmp_path)
    with running_pa(tmp_path, env):
        session = Session(tmp_path, env)
        for step in _console_steps(TUTORIAL, TUTORIAL_PART_1):
            session.run(step)
