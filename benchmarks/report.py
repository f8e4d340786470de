"""Figures as data, the printed table, and ``docs/performance.md`` with its charts.

Every number in the table, the page and its charts (``benchmarks/plots.py``, drawn from
``Figure.series``) comes from a :class:`Figure` a benchmark returned; the page's prose only
explains the method and says which targets were met.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import plots
from benchmarks.fixtures import PG_ADMIN_URL, ROOT, redis_client

DOC = ROOT / "docs" / "performance.md"


@dataclass(frozen=True)
class Row:
    label: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    rows: tuple[Row, ...]
    method: str
    notes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    #: Measured series behind the charts (``benchmarks/plots.py`` names the keys it draws).
    series: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> Figure:
        data = json.loads(text)
        rows = tuple(Row(**row) for row in data.pop("rows"))
        notes = tuple(data.pop("notes"))
        return cls(rows=rows, notes=notes, **data)


def failed(key: str, title: str, error: str) -> Figure:
    return Figure(key, title, (), method="", notes=(f"FAILED: {error}",))


def fmt(value: float, unit: str) -> str:
    if unit in ("tasks/s", "runs/s", "tasks/s (claimed)"):
        return f"{value:,.0f} {unit}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "s":
        return f"{value:.2f} s"
    if unit in ("runs", "MiB"):
        return f"{value:,.0f} {unit}"
    return f"{value:,.2f} {unit}".strip()


def verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "NOT MET")


def text_table(figures: list[Figure]) -> str:
    lines: list[tuple[str, str, str, str]] = [("figure", "value", "target", "")]
    for figure in figures:
        lines.append((f"[{figure.title}]", "", "", ""))
        lines.extend(
            (f"  {row.label}", fmt(row.value, row.unit), row.target, verdict(row.met))
            for row in figure.rows
        )
        lines.extend((f"  ! {note}", "", "", "") for note in figure.notes if "FAILED" in note)
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    rule = "-+-".join("-" * w for w in widths)
    out = []
    for i, line in enumerate(lines):
        out.append(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
        if i == 0:
            out.append(rule)
    return "\n".join(text.rstrip() for text in out)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    info: dict[str, str] = {"cores (nproc)": str(os.cpu_count())}
    try:
        cpu = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpu.splitlines()
                if line.startswith("model name")
            ),
            "unknown",
        )
        info["cpu"] = model
        mem = Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()[0].split()[1]
        info["memory"] = f"{int(mem) / 1024 / 1024:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    info["os"] = f"{platform.system()} {platform.release()}"
    info["python"] = platform.python_version()
    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute(b"SHOW server_version").fetchone()
        info["postgresql"] = str(row[0]) if row else "?"
        row = conn.execute(b"SHOW shared_buffers").fetchone()
        info["postgresql shared_buffers"] = str(row[0]) if row else "?"
    client = redis_client()
    try:
        info["redis"] = str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
    for package in ("celery", "kombu", "redis", "SQLAlchemy", "psycopg"):
        try:
            info[f"{package} (python)"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[f"{package} (python)"] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    info["code"] = f"commit {commit}" if commit else "working tree (no commit yet)"
    return info


_INTRO = """\
# Performance

Figures measured by `make bench` (`python -m benchmarks.run`) on the real code paths:
`TaskScheduler`, the project's Celery app and `publish_runs`, real `celery worker` and
`celery beat` processes, PostgreSQL and Redis. This page is written by the benchmark code;
do not edit the numbers by hand, run `make bench` again. Each benchmark uses its own database
(`bench_<random>`, migrated, dropped afterwards) and its own Redis key prefix (deleted
afterwards). The machine is shared with other work, and figures from one run can differ
markedly from the next when it is busy: read each figure with the load average noted under
its benchmark.
"""

#: {figure key: [(alt text, image path relative to docs/), ...]}; None: matplotlib is missing.
Images = Mapping[str, Sequence[tuple[str, str]]] | None


def _charts_line(images: Images) -> str:
    if images is None:
        return "No charts: matplotlib was not installed when this page was written.\n"
    return (
        "The charts under the benchmarks are drawn by `make bench` (`benchmarks/plots.py`,\n"
        "matplotlib) from the same run as the tables.\n"
    )


def markdown(
    figures: list[Figure],
    info: dict[str, str],
    started: datetime,
    seconds: float,
    quick: bool,
    images: Images = None,
) -> str:
    parts = [_INTRO, _charts_line(images)]
    parts.append(
        f"Measured on {started:%Y-%m-%d %H:%M} UTC, in {seconds / 60:.1f} minutes"
        + (" (**--quick**: reduced sizes, not the reference figures)." if quick else ".")
    )
    parts.append("\n## Machine\n")
    parts.append("| | |\n|---|---|")
    parts.extend(f"| {key} | {value} |" for key, value in info.items())
    parts.append("\n## Summary\n")
    parts.append("| figure | value | target | |\n|---|---:|---|---|")
    for figure in figures:
        for row in figure.rows:
            parts.append(
                f"| {figure.title}: {row.label} | {fmt(row.value, row.unit)} | "
                f"{row.target} | {verdict(row.met)} |"
            )
    for figure in figures:
        parts.append(f"\n## {figure.title}\n")
        if figure.method:
            parts.append(figure.method.strip() + "\n")
        if figure.rows:
            parts.append("| measurement | value | target | |\n|---|---:|---|---|")
            parts.extend(
                f"| {row.label} | {fmt(row.value, row.unit)} | {row.target} | {verdict(row.met)} |"
                for row in figure.rows
            )
        for alt, path in (images or {}).get(figure.key, ()):
            parts.append(f"\n![{alt}]({path})")
        if figure.notes:
            parts.append("")
            parts.extend(f"- {note}" for note in figure.notes)
        if figure.params:
            parts.append(
                "\nParameters: "
                + ", ".join(f"`{key}={value}`" for key, value in figure.params.items())
                + "."
            )
    return "\n".join(parts).rstrip() + "\n"


def draw_charts(figures: list[Figure]) -> Images:
    """Draw the charts beside the page (``docs/img/perf-*.png``); None if matplotlib is missing."""
    if not plots.available():
        print(
            "(matplotlib is not installed: docs/performance.md is written without its charts; "
            "`pip install -e '.[bench]'` adds it)",
            flush=True,
        )
        return None
    drawn = plots.draw_all(figures, plots.IMG)
    for pairs in drawn.values():
        for _, path in pairs:
            print(f"Drew {path.relative_to(ROOT)}", flush=True)
    return {
        key: [(alt, path.relative_to(DOC.parent).as_posix()) for alt, path in pairs]
        for key, pairs in drawn.items()
    }


def write_doc(figures: list[Figure], started: datetime, seconds: float, quick: bool) -> Path:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    images = draw_charts(figures)
    DOC.write_text(markdown(figures, machine(), started, seconds, quick, images), encoding="utf-8")
    return DOC
