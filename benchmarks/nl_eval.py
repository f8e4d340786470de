"""Issue 15: how well :func:`~personal_assistant.core.phrases.parse_request` reads the
evaluation set (tests/unit/nl_cases.yaml), per construction.

An entry expecting a schedule is right when the parser proposes the same canonical schedule
(both through parse_schedule + schedule_to_dict) with the same first firing (and the same title
when the entry names one); an entry expecting a refusal is right when the parser refuses.
A *confident wrong answer* is a Proposal whose schedule or first firing differs from the
expectation, or a Proposal where a refusal was expected: the figure that must stay near zero.
A refusal where a schedule was expected is a miss, not a wrong answer (the user is asked).

``python -m benchmarks.nl_eval [cases.yaml] [--write docs/nl-evaluation.md]``

``--model`` reads the set with the model configured in the environment too (``AGENT=openai``,
``AGENT_BASE_URL``, ``AGENT_MODEL``, ``AGENT_API_KEY``): the model alone
(:class:`~personal_assistant.agents.task_reader.ModelTaskReader`) and the combined reading
(:func:`~personal_assistant.core.phrase_model.combine`, as ``read_checked`` gives it), scored
alike, at most :data:`CONCURRENCY` requests at once; ``--write`` puts them in the section
"With a model". Entries refused as bad input before any reading are not sent (as in the
product) and count with the offline refusal. With no model configured it says so, and so does
the section.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from personal_assistant.agents.task_reader import ModelTaskReader
from personal_assistant.config import Settings
from personal_assistant.core.next_run import next_after
from personal_assistant.core.phrase_model import combine
from personal_assistant.core.phrases import Proposal, Refusal, parse_request
from personal_assistant.core.schedule_json import parse_schedule, schedule_to_dict
from personal_assistant.errors import AgentError, ScheduleError
from personal_assistant.tasks.proposals import asks_model

CASES = Path("tests/unit/nl_cases.yaml")
NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
TZ = "Europe/Paris"
CONCURRENCY = 4
NO_MODEL = "no model configured (AGENT=openai, AGENT_BASE_URL, AGENT_MODEL)"
MARKER = "<!-- nl_eval -->"
MODEL_MARKER = "<!-- nl_eval_model -->"
MODEL_COMMAND = (
    "AGENT=openai AGENT_BASE_URL=http://127.0.0.1:11434/v1 AGENT_MODEL=llama3.2 \\\n"
    "  python -m benchmarks.nl_eval --model --write docs/nl-evaluation.md"
)


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


def _text(entry: dict[str, Any]) -> str:
    repeat = entry.get("text_repeat")
    if isinstance(repeat, dict):
        return str(repeat["unit"]) * int(repeat["times"])
    return str(entry.get("text", ""))


def judge(entry: dict[str, Any], got: Proposal | Refusal | None = None) -> Outcome:
    """The verdict on one entry of the cases file: on ``got``, else on the offline reading."""
    text = _text(entry)
    construction = str(entry.get("construction", "?"))
    expect = entry.get("expect", {})
    now, tz = _now(entry), str(entry.get("tz", TZ))
    if got is None:
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


# With a model -------------------------------------------------------------------------------


@dataclass
class ModelRun:
    """The model's readings of the set: alone, combined with ours, and what the calls cost."""

    alone: list[Outcome] = field(default_factory=list)
    combined: list[Outcome] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    asked: int = 0
    questions: int = 0  # combined answers offering two readings (the readers disagreed)
    seconds: list[float] = field(default_factory=list)


async def _read_one(
    reader: ModelTaskReader, entry: dict[str, Any], gate: asyncio.Semaphore, run: ModelRun
) -> tuple[Outcome, Outcome]:
    """One entry read by the model (unless refused as bad input) and combined with ours."""
    text, now, tz = _text(entry), _now(entry), str(entry.get("tz", TZ))
    offline = parse_request(text, now, tz)
    if not asks_model(text, offline):
        return judge(entry, offline), judge(entry, offline)
    run.asked += 1
    model: Proposal | Refusal | None = None
    async with gate:
        started = time.monotonic()
        try:
            model = await reader.read(text, now, tz)
        except AgentError as exc:
            run.failures[exc.message.split(": ", 1)[0]] += 1
        run.seconds.append(time.monotonic() - started)
    both = combine(offline, model, now)
    if isinstance(both, Refusal) and both.other is not None:
        run.questions += 1
    if model is None:
        failed = judge(entry, Refusal("the call failed", None))
        alone = Outcome(failed.construction, failed.text, "miss", "the call failed")
    else:
        alone = judge(entry, model)
    return alone, judge(entry, both)


async def evaluate_model(path: Path, settings: Settings) -> ModelRun:
    """The set read by the configured model, :data:`CONCURRENCY` requests at once."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    reader = ModelTaskReader.from_settings(settings, max_connections=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)
    run = ModelRun()
    try:
        pairs = await asyncio.gather(*(_read_one(reader, e, gate, run) for e in entries))
    finally:
        await reader.aclose()
    run.alone = [alone for alone, _ in pairs]
    run.combined = [both for _, both in pairs]
    return run


def model_section(run: ModelRun | None, model: str = "") -> str:
    """The "With a model" section: both tables, or how to measure when no model was."""
    if run is None:
        return (
            "No model was measured on this machine. With an OpenAI-compatible endpoint, run:\n\n"
            f"```\n{MODEL_COMMAND}\n```"
        )
    calls = run.seconds or [0.0]
    failed = ", ".join(f"{n} x {why}" for why, n in run.failures.most_common()) or "none"
    return "\n".join(
        [
            f"Model `{model}`, {datetime.now(UTC):%Y-%m-%d}: {run.asked} requests sent "
            f"(entries refused as bad input are not), {sum(calls) / len(calls):.2f} s per call "
            f"on average, {max(calls):.2f} s at most; failed calls: {failed}.",
            "",
            "**The model alone** (a failed call counts as refused):",
            "",
            table(run.alone),
            "",
            "**Combined** (`read_checked`: the offline proposal when both agree, a question "
            f"when they differ; {run.questions} answers offered both readings):",
            "",
            table(run.combined),
        ]
    )


def model_mode(path: Path) -> str:
    """Reads ``path`` with the configured model and prints the figures; the section's text."""
    settings = Settings.from_env()
    if settings.agent != "openai" or not settings.agent_base_url:
        print(NO_MODEL)
        return model_section(None)
    run = asyncio.run(evaluate_model(path, settings))
    for name, outcomes in (("model", run.alone), ("combined", run.combined)):
        for o in outcomes:
            if o.verdict == "wrong":
                print(f"{name}: wrong [{o.construction}] {o.text!r}: {o.detail}")
    section = model_section(run, settings.agent_model)
    print("\n" + section)
    return section


def _put(text: str, marker: str, report: str, heading: str = "") -> str:
    """``text`` with ``report`` between its two ``marker`` lines, added at the end if absent."""
    if marker in text:
        head, _, tail = text.partition(marker)
        _, _, tail = tail.partition(marker)
        return f"{head}{marker}\n{report}\n{marker}{tail}"
    return text + f"\n{heading}{marker}\n{report}\n{marker}\n"


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
    section = model_mode(path) if "--model" in argv else None
    if write is not None:
        target = Path(write)
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        text = _put(text, MARKER, report)
        if section is not None:
            text = _put(text, MODEL_MARKER, section, "## With a model\n\n")
        target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
