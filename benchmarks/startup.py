"""Issue 16, target 7: how fast ``pa --help``, ``pa task list`` and ``pa status`` start.

Each command is a whole process, as a user runs it: the venv's ``pa`` script, timed from
before ``subprocess.run`` to its return, output discarded. First on the embedded default
(SQLite under a temporary ``PA_HOME``, no service URL), then on PostgreSQL and Redis (a
throw-away ``bench_<random>`` database and key prefix), each after the same preparation: one
user and ``TASKS`` tasks. ``python -X importtime`` shows which imports the time goes to.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fixtures import REDIS_URL, database, log, redis_prefix
from benchmarks.report import Figure, Row

KEY = "startup"
TITLE = "CLI start-up"
TARGET_S = 0.3
RUNS = 10
WARM_UP = 2
QUICK_RUNS = 5
QUICK_WARM_UP = 1
TASKS = 20
#: How many of the largest top-level imports the notes name.
IMPORTS_SHOWN = 8
PA = Path(sys.executable).with_name("pa")
EMBEDDED = "embedded SQLite"
DEPLOYED = "PostgreSQL + Redis"
EMBEDDED_COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("task", "list"), ("status",))
DEPLOYED_COMMANDS: tuple[tuple[str, ...], ...] = (("task", "list"), ("status",))
#: ``pa status`` exits 1 when no worker or scheduler has reported: none runs here.
ALLOWED_EXITS: Mapping[tuple[str, ...], tuple[int, ...]] = {("status",): (0, 1)}
#: What the commands inherit of the benchmark's environment: no service URL, no setting.
_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")

METHOD = """\
**What it means.** How long a user waits for the commands typed most often, from pressing
Enter to the prompt's return: the interpreter's start, the imports, reading the settings,
the database query and the output. Target: `pa --help`, `pa task list` and `pa status` within
{target:g} s on the embedded default (median); the same commands on PostgreSQL and Redis are
reported for information.

**How it was measured.** Each command as a whole process: the venv's `pa` script run by
`subprocess.run` (output to `/dev/null`), timed with `time.perf_counter()` around it;
{warm_up} warm-up runs, then the median of {runs} timed runs (min and max in the notes).
Embedded default: no `*_URL` variable and `PA_HOME` a temporary folder (SQLite under its
`var/`). PostgreSQL + Redis: `DATABASE_URL` a throw-away database on the local server,
`REDIS_URL` the local Redis with a key prefix of its own. Both are first prepared with
`pa db upgrade`, `pa user add Ada` and {tasks} tasks (`pa task add "t N" --every 1h`).
`pa status` exits 1 there, as no worker or scheduler runs: that exit is expected; any other
non-zero exit fails the benchmark. The import times in the notes are from one run of
`python -X importtime -m personal_assistant.cli.main task list` on the embedded default (the
instrumentation itself slows the imports somewhat).
"""


@dataclass(frozen=True)
class Timing:
    args: tuple[str, ...]
    backend: str
    seconds: tuple[float, ...]

    @property
    def command(self) -> str:
        return " ".join(("pa", *self.args))

    @property
    def label(self) -> str:
        return f"{self.command} ({self.backend})"

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _BASICS}
    env.update(PA_HOME=str(home), **settings)
    return env


def _failure(args: Sequence[str], env: Mapping[str, str], home: Path, code: int) -> RuntimeError:
    """The error for a command that exited ``code``, with the end of its output (run again)."""
    again = subprocess.run(
        [str(PA), *args], env=dict(env), cwd=home, capture_output=True, text=True, check=False
    )
    tail = "\n".join((again.stdout + again.stderr).strip().splitlines()[-10:])
    return RuntimeError(f"`pa {' '.join(args)}` exited {code}:\n{tail}")


def _pa(args: Sequence[str], env: Mapping[str, str], home: Path) -> float:
    """Run ``pa *args`` once; the wall-clock seconds of the whole process."""
    began = time.perf_counter()
    proc = subprocess.run(
        [str(PA), *args],
        env=dict(env),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    seconds = time.perf_counter() - began
    if proc.returncode not in ALLOWED_EXITS.get(tuple(args), (0,)):
        raise _failure(args, env, home, proc.returncode)
    return seconds


def _prepare(env: Mapping[str, str], home: Path) -> None:
    """Migrate, one user, ``TASKS`` tasks, through the CLI as a user would."""
    _pa(("db", "upgrade"), env, home)
    _pa(("user", "add", "Ada"), env, home)
    for n in range(1, TASKS + 1):
        _pa(("task", "add", f"t {n}", "--every", "1h"), env, home)


def _time(
    commands: Sequence[tuple[str, ...]],
    backend: str,
    env: Mapping[str, str],
    home: Path,
    quick: bool,
) -> list[Timing]:
    runs, warm_up = (QUICK_RUNS, QUICK_WARM_UP) if quick else (RUNS, WARM_UP)
    timings = []
    for args in commands:
        for _ in range(warm_up):
            _pa(args, env, home)
        timing = Timing(args, backend, tuple(_pa(args, env, home) for _ in range(runs)))
        log(f"{timing.label}: median {timing.median:.3f} s")
        timings.append(timing)
    return timings


def top_level_imports(report: str) -> list[tuple[str, int]]:
    """``(module, cumulative µs)`` of the top-level lines of ``-X importtime``, largest first.

    A line reads ``import time: <self> | <cumulative> | <module>``, the module indented two
    spaces per level of nesting after the one space that follows the ``|``.
    """
    found = []
    for line in report.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit() or name.startswith("  "):
            continue
        found.append((name.strip(), int(cumulative)))
    return sorted(found, key=lambda pair: pair[1], reverse=True)


def _imports(env: Mapping[str, str], home: Path) -> list[tuple[str, int]]:
    args = ("task", "list")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "personal_assistant.cli.main", *args],
        env=dict(env),
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise _failure(args, env, home, proc.returncode)
    return top_level_imports(proc.stderr)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f}"


def _embedded(quick: bool) -> tuple[list[Timing], list[tuple[str, int]], str]:
    with tempfile.TemporaryDirectory(prefix="pa-startup-") as tmp:
        home = Path(tmp)
        env = _env(home)
        log(f"embedded default: preparing {TASKS} tasks")
        _prepare(env, home)
        before = _load()
        timings = _time(EMBEDDED_COMMANDS, EMBEDDED, env, home, quick)
        after = _load()
        imports = _imports(env, home)
    return timings, imports, f"{EMBEDDED}: {before} before, {after} after"


def _deployed(quick: bool) -> tuple[list[Timing], str]:
    with (
        tempfile.TemporaryDirectory(prefix="pa-startup-") as tmp,
        redis_prefix() as prefix,
        database() as url,
    ):
        home = Path(tmp)
        env = _env(home, DATABASE_URL=url, REDIS_URL=REDIS_URL, REDIS_KEY_PREFIX=prefix)
        log(f"PostgreSQL + Redis: preparing {TASKS} tasks")
        _prepare(env, home)
        before = _load()
        timings = _time(DEPLOYED_COMMANDS, DEPLOYED, env, home, quick)
        after = _load()
    return timings, f"{DEPLOYED}: {before} before, {after} after"


def _row(timing: Timing) -> Row:
    if timing.backend != EMBEDDED:
        return Row(timing.label, timing.median, "s")
    return Row(timing.label, timing.median, "s", f"<= {TARGET_S:g} s", timing.median <= TARGET_S)


def measure(quick: bool) -> Figure:
    embedded, imports, embedded_load = _embedded(quick)
    deployed, deployed_load = _deployed(quick)
    timings = [*embedded, *deployed]
    runs, warm_up = (QUICK_RUNS, QUICK_WARM_UP) if quick else (RUNS, WARM_UP)
    shown = imports[:IMPORTS_SHOWN]
    notes = [
        f"{t.label}: median {t.median:.3f} s, min {min(t.seconds):.3f} s, "
        f"max {max(t.seconds):.3f} s over {len(t.seconds)} runs."
        for t in timings
    ]
    notes.append(
        "Load average (1/5/15 min) around the timed runs: "
        f"{embedded_load}; {deployed_load}; on {os.cpu_count()} cores."
    )
    notes.append(
        f"The {len(shown)} largest top-level imports of `pa task list` ({EMBEDDED}, "
        "cumulative, `python -X importtime`, one run): "
        + ", ".join(f"{module}: {us / 1000:.0f} ms" for module, us in shown)
        + "."
    )
    return Figure(
        KEY,
        TITLE,
        tuple(_row(t) for t in timings),
        method=METHOD.format(target=TARGET_S, runs=runs, warm_up=warm_up, tasks=TASKS),
        notes=tuple(notes),
        params={"runs": runs, "warm-up runs": warm_up, "tasks": TASKS},
        series={
            "startup_s": {t.label: list(t.seconds) for t in timings},
            "imports_ms": {module: us / 1000 for module, us in shown},
        },
    )
