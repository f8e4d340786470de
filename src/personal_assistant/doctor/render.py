"""A :class:`~.report.Report` as text: a terminal table, JSON, JUnit XML, a Markdown report.

Pure: each renderer takes the report and returns a string; the CLI chooses one
(:data:`FORMATS`) and writes it. Evidence can quote what a server or a file sent, so every
rendering treats it as hostile text:

- :func:`table` shows it through :func:`~personal_assistant.safe_text.terminal_text` (one line,
  no escape sequence, no control or bidi character); ``color`` adds ANSI colours to the
  verdict tag only.
- :func:`as_json` writes what a terminal acts on as ``\\uXXXX`` escapes
  (:func:`~personal_assistant.safe_text.escape_json_text`), like ``pa --json``: the decoded
  value is the evidence, unchanged. A figure that is not finite (NaN) is written ``null``.
- :func:`junit` is JUnit XML as GitLab, Jenkins and GitHub test reporters read it: one
  ``<testsuite>`` per section, one ``<testcase>`` per check. Characters XML 1.0 forbids
  (controls but tab and line breaks, lone surrogates, U+FFFE/U+FFFF) and the C1 controls it
  discourages are removed; ``<``, ``&`` and ``]]>`` are escaped by ElementTree. The string
  declares UTF-8: write it in UTF-8. **JUnit has no warning state**: a warning is a passing
  testcase whose ``<system-out>`` starts with ``WARNING:``, and the exit code of ``pa doctor``
  (1) is what tells CI about it. Checks carry no duration of their own, so a testcase's
  ``time`` is 0 and the run's duration is on ``<testsuites>``.
- :func:`markdown` is the validation report people used to write by hand. In table cells and
  text, ``|``, ``\\`` and ``<`` are escaped and line breaks become ``<br>``.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from personal_assistant.doctor.report import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_WARNINGS,
    Check,
    Report,
    Verdict,
)
from personal_assistant.safe_text import escape_json_text, terminal_text

__all__ = ["FORMATS", "as_json", "junit", "markdown", "table"]

#: The verdicts in the order counts are shown.
_ORDER = (Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP)
#: What each exit code of ``pa doctor`` means (the table's last line).
_EXIT_MEANING = {
    EXIT_OK: "exit 0: no warning, no failure",
    EXIT_WARNINGS: "exit 1: warnings, no failure",
    EXIT_FAILURES: "exit 2: at least one check failed",
}
#: The overall verdict of the Markdown report, by exit code.
_VALIDITY = {EXIT_OK: "valid", EXIT_WARNINGS: "valid with warnings", EXIT_FAILURES: "not valid"}


def _duration_s(report: Report) -> float:
    return max((report.finished_at - report.started_at).total_seconds(), 0.0)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _sections(checks: Iterable[Check]) -> dict[str, list[Check]]:
    """The checks grouped by section, sections in the order they first appear."""
    groups: dict[str, list[Check]] = {}
    for check in checks:
        groups.setdefault(check.section, []).append(check)
    return groups


# -- the terminal table ---------------------------------------------------------------------

_COLOURS = {Verdict.PASS: "32", Verdict.WARN: "33", Verdict.FAIL: "1;31", Verdict.SKIP: "2"}


def _tag(verdict: Verdict, color: bool) -> str:
    tag = verdict.value.upper()
    return f"\x1b[{_COLOURS[verdict]}m{tag}\x1b[0m" if color else tag


def _summary(report: Report) -> str:
    """``12 passed, 1 warning, 1 failed, 2 skipped in 3.4 s``, zero counts left out."""
    counts = report.counts
    warnings = counts[Verdict.WARN]
    words = {
        Verdict.PASS: "passed",
        Verdict.WARN: "warning" if warnings == 1 else "warnings",
        Verdict.FAIL: "failed",
        Verdict.SKIP: "skipped",
    }
    parts = [f"{counts[v]} {words[v]}" for v in _ORDER if counts[v]]
    return f"{', '.join(parts) or 'no checks'} in {_duration_s(report):.1f} s"


def _header(report: Report) -> str:
    started = _utc(report.started_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    width = max((len(terminal_text(k)) for k in report.environment), default=0)
    items = [
        f"  {terminal_text(k):>{width}}: {terminal_text(v)}" for k, v in report.environment.items()
    ]
    return "\n".join([f"pa doctor · {started}", *items])


def _check_lines(check: Check, id_width: int, color: bool) -> list[str]:
    # The tag's escape sequence is ours; only the text from outside goes through terminal_text.
    rest = f"{terminal_text(check.id):<{id_width}}  {terminal_text(check.evidence)}".rstrip()
    lines = [f"  {_tag(check.verdict, color)}  {rest}"]
    if check.verdict in (Verdict.WARN, Verdict.FAIL) and check.fix:
        lines.append(f"        fix: {terminal_text(check.fix)}")
    return lines


def table(report: Report, *, color: bool = False) -> str:
    """The terminal report: a header, the checks by section, a fix under each warning and
    failure, and a summary line that says what the exit code means."""
    id_width = max((len(terminal_text(c.id)) for c in report.checks), default=0)
    lines = [_header(report)]
    for section, checks in _sections(report.checks).items():
        lines += ["", terminal_text(section)]
        for check in checks:
            lines += _check_lines(check, id_width, color)
    lines += ["", f"{_summary(report)} · {_EXIT_MEANING[report.exit_code]}"]
    return "\n".join(lines)


# -- JSON -------------------------------------------------------------------------------------


def _figures(figures: Mapping[str, float]) -> dict[str, float | None]:
    return {name: value if math.isfinite(value) else None for name, value in figures.items()}


def _check_json(check: Check) -> dict[str, object]:
    return {
        "id": check.id,
        "section": check.section,
        "title": check.title,
        "verdict": check.verdict.value,
        "evidence": check.evidence,
        "fix": check.fix,
        "figures": _figures(check.figures),
    }


def as_json(report: Report) -> str:
    """The report as a JSON document (indent 2, keys in a fixed order, times ISO-8601 UTC)."""
    counts = report.counts
    data = {
        "exit_code": report.exit_code,
        "summary": {v.value: counts[v] for v in _ORDER},
        "environment": dict(report.environment),
        "started_at": _utc(report.started_at).isoformat(),
        "finished_at": _utc(report.finished_at).isoformat(),
        "duration_s": round(_duration_s(report), 3),
        "checks": [_check_json(check) for check in report.checks],
    }
    return escape_json_text(json.dumps(data, indent=2, ensure_ascii=False))


# -- JUnit XML --------------------------------------------------------------------------------


def _xml_allowed(code: int) -> bool:
    """XML 1.0's ``Char`` production, without the C1 controls it discourages."""
    if code < 0x20:
        return code in (0x09, 0x0A, 0x0D)
    if 0x7F <= code <= 0x9F:
        return code == 0x85
    return not (0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF))


def _xml_text(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return "".join(ch for ch in text if _xml_allowed(ord(ch)))


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _properties(parent: ET.Element, environment: Mapping[str, str]) -> None:
    if not environment:
        return
    properties = ET.SubElement(parent, "properties")
    for name, value in environment.items():
        ET.SubElement(properties, "property", name=_xml_text(name), value=_xml_text(value))


def _testcase(suite: ET.Element, check: Check) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_xml_text(f"doctor.{check.section}"),
        name=_xml_text(check.id),
        time=_seconds(0.0),
    )
    evidence = _xml_text(check.evidence)
    if check.verdict is Verdict.FAIL:
        failure = ET.SubElement(case, "failure", message=evidence, type="fail")
        failure.text = f"{evidence}\nfix: {_xml_text(check.fix)}"
    elif check.verdict is Verdict.SKIP:
        ET.SubElement(case, "skipped", message=evidence)
    elif check.verdict is Verdict.WARN:
        out = ET.SubElement(case, "system-out")
        out.text = f"WARNING: {evidence}\nfix: {_xml_text(check.fix)}"
    else:
        ET.SubElement(case, "system-out").text = evidence


def _counts_attrib(checks: Iterable[Check], time: float) -> dict[str, str]:
    verdicts = [check.verdict for check in checks]
    return {
        "tests": str(len(verdicts)),
        "failures": str(verdicts.count(Verdict.FAIL)),
        "errors": "0",
        "skipped": str(verdicts.count(Verdict.SKIP)),
        "time": _seconds(time),
    }


def junit(report: Report) -> str:
    """The report as JUnit XML, with its declaration (module doc: warnings, hostile text)."""
    root = ET.Element("testsuites", name="pa doctor")
    root.attrib.update(_counts_attrib(report.checks, _duration_s(report)))
    timestamp = _utc(report.started_at).isoformat()
    for section, checks in _sections(report.checks).items():
        suite = ET.SubElement(root, "testsuite", name=_xml_text(section))
        suite.attrib.update(_counts_attrib(checks, 0.0))
        suite.set("timestamp", timestamp)
        _properties(suite, report.environment)
        for check in checks:
            _testcase(suite, check)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


# -- Markdown ---------------------------------------------------------------------------------


def _md(value: object) -> str:
    """Text from outside as Markdown a table cell holds: one line, nothing it could open."""
    text = value if isinstance(value, str) else str(value)
    lines = [
        terminal_text(line).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
        for line in text.splitlines()
    ]
    return "<br>".join(lines)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _md_table(headers: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> list[str]:
    return [_row(*headers), _row(*("---" for _ in headers)), *(_row(*row) for row in rows)]


def _md_environment(report: Report) -> list[str]:
    if not report.environment:
        return ["## Environment", "", "Not recorded."]
    rows = ((_md(k), _md(v)) for k, v in report.environment.items())
    return ["## Environment", "", *_md_table(("item", "value"), rows)]


def _md_summary(report: Report) -> list[str]:
    counts = report.counts
    rows = ((v.value.upper(), counts[v]) for v in _ORDER)
    verdict = _VALIDITY[report.exit_code]
    return [
        "## Summary",
        "",
        f"**Verdict: {verdict}** (exit code {report.exit_code}): {_summary(report)}.",
        "",
        *_md_table(("verdict", "checks"), rows),
    ]


def _md_checks(report: Report) -> list[str]:
    lines = ["## Checks"]
    for section, checks in _sections(report.checks).items():
        rows = ((_md(c.id), c.verdict.value.upper(), _md(c.evidence)) for c in checks)
        lines += ["", f"### {_md(section)}", "", *_md_table(("check", "verdict", "evidence"), rows)]
    if not report.checks:
        lines += ["", "No checks ran."]
    return lines


#: Units by the suffix of a figure's name, the longest suffix first.
_UNITS = (("_per_s", "/s"), ("_ms", " ms"), ("_s", " s"), ("_pct", " %"), ("_bytes", " B"))


def _figure(name: str, value: float) -> str:
    unit = next((unit for suffix, unit in _UNITS if name.endswith(suffix)), "")
    return f"{value:g}{unit}"


def _md_figures(report: Report) -> list[str]:
    lines = ["## Figures"]
    rows = [
        (_md(check.id), _md(name), _figure(name, value))
        for check in report.checks
        for name, value in check.figures.items()
    ]
    if rows:
        lines += ["", *_md_table(("check", "figure", "value"), rows)]
    else:
        lines += ["", "No figures."]
    return lines


def _md_failures(report: Report) -> list[str]:
    lines = ["## Failure analysis"]
    by_severity = [c for c in report.checks if c.verdict is Verdict.FAIL] + [
        c for c in report.checks if c.verdict is Verdict.WARN
    ]
    for check in by_severity:
        lines += [
            "",
            f"### {check.verdict.value.upper()} {_md(check.id)}: {_md(check.title)}",
            "",
            f"- Evidence: {_md(check.evidence)}",
            f"- Fix: {_md(check.fix) or 'none given'}",
        ]
    if not by_severity:
        lines += ["", "No failures."]
    return lines


def markdown(report: Report) -> str:
    """The validation report: environment, summary and verdict, checks, figures, failures."""
    started = _utc(report.started_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    finished = _utc(report.finished_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = [
        "# Validation report",
        "",
        f"Date: {started} (finished {finished}, duration {_duration_s(report):.1f} s)",
    ]
    parts = [
        head,
        _md_environment(report),
        _md_summary(report),
        _md_checks(report),
        _md_figures(report),
        _md_failures(report),
    ]
    return "\n\n".join("\n".join(part) for part in parts) + "\n"


#: The renderers by ``--format`` name.
FORMATS: Mapping[str, Callable[[Report], str]] = {
    "table": table,
    "json": as_json,
    "junit": junit,
    "markdown": markdown,
}
