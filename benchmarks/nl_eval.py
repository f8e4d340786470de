"""Issue 15: how well :func:`~personal_assistant.core.phrases.parse_request` reads the
evaluation set (tests/unit/nl_cases.yaml), per construction.

An entry expecting a schedule is right when the parser proposes the same canonical schedule
(both through parse_schedule + schedule_to_dict) with the same first firing (and the same title
when the entry names one); an entry expecting a refusal is right when the parser refuses.
A *confident wrong answer* is a Proposal whose schedule or first firing differs from the
expectation, or a Proposal where a refusal was expected: the figure that must stay near zero.
A refusal where a schedule was expected is a miss, not a wrong answer (the user is asked).

``python -m benchmarks.nl_eval [cases.yaml] [--write docs/nl-evaluation.md]``
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from personal_assistant.core.next_run import next_after
from personal_assistant.core.phrases import Proposal, parse_request
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.errors import ScheduleError

CASES = Path("tests/unit/nl_cases.yaml")
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TZ = "Europe/Paris"


@dataclass
class Outcome:
    construction: str
    text: str
    verdict: str  # "right", "miss" (refused, a schedule was expected), "wrong" (confident)
    detail: str
    closest: bool | None = None  # a refusal with an expected closest reading: offered it?


def _canonical(schedule: dict[str, Any]) -> dict[str, object]:
    return schedule_to_dict(parse_schedule(schedule))


def _first(schedule: dict[str, Any], now: datetime) -> datetime | None:
    return next_after(parse_schedule(schedule), now)


def _now(entry: dict[str, Any]) -> datetime:
    raw = entry.get("now")
    if raw is None:
        return NOW
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def judge(entry: dict[str, Any]) -> Outcome:
    """The verdict on one entry of the cases file."""
    repeat = entry.get("text_repeat")
    if isinstance(repeat, dict):
        text = str(repeat["unit"]) * int(repeat["times"])
    else:
        text = str(entry.get("text", ""))
    construction = str(entry.get("construction", "?"))
    expect = entry.get("expect", {})
    now, tz = _now(entry), str(entry.get("tz", TZ))
    got = parse_request(text, now, tz)
    short = text if len(text) < 70 else text[:67] + "..."
    if expect.get("refusal"):
        if isinstance(got, Proposal):
            return Outcome(construction, short, "wrong", f"proposed {got.schedule}")
        if "closest" in expect:
            offered = got.closest.schedule if got.closest is not None else None
            same = offered is not None and _canonical(offered) == _canonical(expect["closest"])
            return Outcome(construction, short, "right", got.reason, closest=same)
        return Outcome(construction, short, "right", got.reason)
    if not isinstance(got, Proposal):
        return Outcome(construction, short, "miss", got.reason)
    try:
        want = _canonical(expect["schedule"])
    except (ScheduleError, KeyError) as exc:
        return Outcome(construction, short, "miss", f"bad expectation: {exc}")
    mine = _canonical(got.schedule)
    first = _first(got.schedule, now)
    want_first = expect.get("first")
    problems = []
    if mine != want:
        problems.append(f"schedule {mine} != {want}")
    if want_first is not None:
        expected = (
            want_first if isinstance(want_first, datetime) else datetime.fromisoformat(want_first)
        )
        if first is None or first != expected:
            problems.append(f"first {first} != {expected}")
    if problems:
        return Outcome(construction, short, "wrong", "; ".join(problems))
    if "title" in expect and expect["title"] != got.title:
        return Outcome(construction, short, "miss", f"title {got.title!r} != {expect['title']!r}")
    return Outcome(construction, short, "right", "")


def evaluate(path: Path) -> list[Outcome]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    return [judge(entry) for entry in entries]


def table(outcomes: list[Outcome]) -> str:
    """The per-construction table in Markdown, and the totals."""
    by: dict[str, Counter[str]] = {}
    for o in outcomes:
        by.setdefault(o.construction, Counter())[o.verdict] += 1
    lines = [
        "| construction | right | refused (miss) | wrong (confident) | total |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in sorted(by):
        c = by[name]
        total = sum(c.values())
        lines.append(f"| {name} | {c['right']} | {c['miss']} | {c['wrong']} | {total} |")
    total = len(outcomes)
    right = sum(o.verdict == "right" for o in outcomes)
    wrong = sum(o.verdict == "wrong" for o in outcomes)
    lines.append(f"| **all** | {right} | {total - right - wrong} | {wrong} | {total} |")
    lines.append("")
    if total:
        lines.append(f"Exact: {100 * right / total:.1f} % ({right}/{total}).  ")
        lines.append(
            f"Confident wrong answers: {100 * wrong / total:.1f} % ({wrong}/{total})"
            " of all entries."
        )
    asked = [o.closest for o in outcomes if o.closest is not None]
    if asked:
        lines.append(
            f"Refusals offering the expected closest reading: {sum(asked)}/{len(asked)}"
            " (informative)."
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    write = argv[argv.index("--write") + 1] if "--write" in argv else None
    args = [a for a in argv[1:] if not a.startswith("--") and a != write]
    path = Path(args[0]) if args else CASES
    outcomes = evaluate(path)
    for o in outcomes:
        if o.verdict != "right":
            print(f"{o.verdict:5} [{o.construction}] {o.text!r}: {o.detail}")
    report = table(outcomes)
    print("\n" + report)
    if write is not None:
        target = Path(write)
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        marker = "<!-- nl_eval -->"
        if marker in text:
            head, _, tail = text.partition(marker)
            _, _, tail = tail.partition(marker)
            text = f"{head}{marker}\n{report}\n{marker}{tail}"
        else:
            text += f"\n{marker}\n{report}\n{marker}\n"
        target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
