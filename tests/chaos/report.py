"""The reliability table: one row per scenario, printed at the end and written to the docs.

Scenarios append their :class:`~chaos.harness.Outcome` as a JSON line to the file named by
``PA_CHAOS_RESULTS`` (the conftest sets one per session). ``make chaos`` sets
``PA_CHAOS_WRITE_DOC=1``: the table then replaces the one between the markers of
``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"
COLUMNS = (
    ("scenario", "scenario"),
    ("scheduled", "runs scheduled"),
    ("completed", "runs completed"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("stuck", "stuck"),
    ("agent_calls_per_attempt", "agent calls per attempt"),
    ("notifications_duplicated", "notifications duplicated"),
    ("notifications_redelivered", "redelivered (same key)"),
    ("notifications_undelivered", "notifications undelivered"),
    ("recover_s", "time to recover (s)"),
    ("notes", "notes"),
)


def results_path() -> Path | None:
    value = os.environ.get("PA_CHAOS_RESULTS")
    return Path(value) if value else None


def record(row: Any) -> None:
    path = results_path()
    if path is None:
        return
    with path.open("a") as out:
        out.write(row.as_json() + "\n")


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value).replace("|", "/")


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" if key in ("scenario", "notes") else "---:" for key, _ in COLUMNS)
    lines = [head, rule + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key)) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def text(rows: list[dict[str, Any]]) -> str:
    table = [[title for _, title in COLUMNS]]
    table += [[_cell(row.get(key)) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    lines += [f"{row['scenario']}: {json.dumps(row.get('extra', {}))}" for row in rows]
    return "\n".join(lines)


def write_doc(rows: list[dict[str, Any]], stamp: str, doc: Path = DOC) -> None:
    page = doc.read_text()
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    block = f"\n{stamp}\n\n{markdown(rows)}\n"
    doc.write_text(page[:start] + block + page[end:])
