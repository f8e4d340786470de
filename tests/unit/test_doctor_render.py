"""``pa doctor``'s renderers (pure): the terminal table, JSON, JUnit XML and Markdown.

Three reports built by hand: a healthy one, one with a warning, a failure and a skip, and one
whose evidence is hostile (controls, escape sequences, ``]]>``, markup, emoji, a lone surrogate).
"""

from __future__ import annotations

import json
import unicodedata
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest

from personal_assistant.doctor import render
from personal_assistant.doctor.report import (
    Check,
    Report,
    Verdict,
    failed,
    passed,
    skipped,
    warned,
)

T0 = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
ENVIRONMENT = {
    "deployment": "compose",
    "database": "postgresql://pa:***@db:5432/pa",
    "broker": "redis://redis:6379/0",
}


def _report(*checks: Check, seconds: float = 3.42, **environment: str) -> Report:
    return Report(checks, environment or ENVIRONMENT, T0, T0 + timedelta(seconds=seconds))


HEALTHY = _report(
    passed("redis.ping", "Redis answers", "PONG in 0.4 ms", latency_ms=0.4),
    passed("database.connection", "Database reachable", "PostgreSQL 15.4 in 3 ms"),
    passed("redis.result_backend", "Result backend", "wrote and read a result"),
    passed(
        "canary.run",
        "A canary run end to end",
        "queued, ran and stored in 120 ms",
        queue_ms=3.5,
        execute_ms=101.0,
        runs_per_s=431.2,
        total_s=0.12,
    ),
)

MIXED = _report(
    passed("redis.ping", "Redis answers", "PONG in 0.4 ms", latency_ms=0.4),
    warned(
        "redis.eviction",
        "Redis keeps queued messages",
        "maxmemory-policy is allkeys-lru",
        "set maxmemory-policy noeviction",
    ),
    failed(
        "database.migrations",
        "Schema at the newest migration",
        "schema at 0007, newest is 0009",
        "run `pa db upgrade`",
    ),
    skipped("ai.agent", "Agent reachable", "the offline agent is configured"),
    passed("database.connection", "Database reachable", "PostgreSQL 15.4 in 3 ms"),
)

HOSTILE_EVIDENCE = "a\x00b\x1b[2J\x07 ]]> <b>&amp; | x\ny \ud800 😀 \x9b1m \ufffe"
HOSTILE = _report(
    failed("celery.workers", "Workers answer", HOSTILE_EVIDENCE, "restart <worker> | ]]>"),
    warned("redis.auth", "Auth", "said \x1b]0;owned\x07 hi", "set a password"),
    skipped("ai.agent", "Agent", "none ]]> \x01"),
    passed("redis.ping", "Ping", "ok 😀", **{"p\x00|x_ms": 1.5}),
    deployment="compose \x1b[31m",
    host="<h|o>\x00",
)


def _only_shown(text: str) -> bool:
    """Nothing a terminal acts on: no control (but line feeds), format or surrogate character."""
    return not any(ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text)


# -- the terminal table -------------------------------------------------------------------------


def test_the_table_groups_by_section_in_order_and_puts_the_fix_under_the_check() -> None:
    header, _, rest = render.table(MIXED).partition("\n\n")
    head = header.splitlines()
    assert head[0] == "pa doctor · 2026-11-29 07:30:00 UTC"
    assert head[1].strip() == "deployment: compose"
    assert any(line.strip() == "broker: redis://redis:6379/0" for line in head)
    lines = rest.splitlines()
    sections = [line for line in lines[:-1] if line and not line.startswith(" ")]
    assert sections == ["redis", "database", "ai"]
    body = [line for line in lines if line.startswith("  ")]
    assert body == [
        "  PASS  redis.ping           PONG in 0.4 ms",
        "  WARN  redis.eviction       maxmemory-policy is allkeys-lru",
        "        fix: set maxmemory-policy noeviction",
        "  FAIL  database.migrations  schema at 0007, newest is 0009",
        "        fix: run `pa db upgrade`",
        "  PASS  database.connection  PostgreSQL 15.4 in 3 ms",
        "  SKIP  ai.agent             the offline agent is configured",
    ]


@pytest.mark.parametrize(
    ("report", "summary"),
    [
        pytest.param(
            MIXED,
            "2 passed, 1 warning, 1 failed, 1 skipped in 3.4 s · exit 2: at least one check failed",
            id="failed",
        ),
        pytest.param(HEALTHY, "4 passed in 3.4 s · exit 0: no warning, no failure", id="healthy"),
        pytest.param(
            _report(
                warned("a.b", "t", "e", "f"), warned("a.c", "t", "e", "f"), passed("a.d", "t", "e")
            ),
            "1 passed, 2 warnings in 3.4 s · exit 1: warnings, no failure",
            id="warnings",
        ),
        pytest.param(_report(seconds=0), "no checks in 0.0 s · exit 0: no warning, no failure"),
    ],
)
def test_the_last_line_counts_the_verdicts_and_says_what_the_exit_code_means(
    report: Report, summary: str
) -> None:
    assert render.table(report).splitlines()[-1] == summary


def test_a_passing_or_skipped_check_has_no_fix_line() -> None:
    report = _report(Check("a.b", "t", Verdict.PASS, "fine", fix="ignored"))
    assert "fix:" not in render.table(report)


def test_colour_goes_on_the_verdict_tag_only() -> None:
    plain, coloured = render.table(MIXED), render.table(MIXED, color=True)
    assert "\x1b" not in plain
    assert "  \x1b[1;31mFAIL\x1b[0m  database.migrations  schema at 0007" in coloured
    assert "  \x1b[32mPASS\x1b[0m  redis.ping" in coloured
    assert "  \x1b[33mWARN\x1b[0m  redis.eviction" in coloured
    assert "  \x1b[2mSKIP\x1b[0m  ai.agent" in coloured
    assert coloured.count("\x1b[") == 2 * len(MIXED.checks)
    without_colour = coloured
    for code in ("32", "33", "1;31", "2", "0"):
        without_colour = without_colour.replace(f"\x1b[{code}m", "")
    assert without_colour == plain


def test_the_table_shows_hostile_text_as_plain_single_lines() -> None:
    text = render.table(HOSTILE)
    assert _only_shown(text)
    lines = text.splitlines()
    assert [line.strip() for line in lines[1:3]] == ["deployment: compose", "host: <h|o>"]
    failure = next(line for line in lines if "celery.workers" in line)
    assert failure.startswith("  FAIL  celery.workers  ab ]]> <b>&amp; | x y ")
    assert "😀" in failure and "[2J" not in failure
    assert "  WARN  redis.auth      said  hi" in lines
    assert "        fix: restart <worker> | ]]>" in lines


# -- JSON ---------------------------------------------------------------------------------------


def test_json_has_the_documented_shape_and_key_order() -> None:
    data = json.loads(render.as_json(MIXED))
    assert list(data) == [
        "exit_code",
        "summary",
        "environment",
        "started_at",
        "finished_at",
        "duration_s",
        "checks",
    ]
    assert data["exit_code"] == 2
    assert data["summary"] == {"pass": 2, "warn": 1, "fail": 1, "skip": 1}
    assert list(data["summary"]) == ["pass", "warn", "fail", "skip"]
    assert data["environment"] == ENVIRONMENT
    assert list(data["environment"]) == list(ENVIRONMENT)
    assert data["started_at"] == "2026-11-29T07:30:00+00:00"
    assert data["finished_at"] == "2026-11-29T07:30:03.420000+00:00"
    assert data["duration_s"] == 3.42
    assert [c["id"] for c in data["checks"]] == [c.id for c in MIXED.checks]
    assert data["checks"][2] == {
        "id": "database.migrations",
        "section": "database",
        "title": "Schema at the newest migration",
        "verdict": "fail",
        "evidence": "schema at 0007, newest is 0009",
        "fix": "run `pa db upgrade`",
        "figures": {},
    }


def test_json_keeps_the_figures_and_writes_times_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    report = Report(
        HEALTHY.checks, ENVIRONMENT, T0.astimezone(paris), T0.astimezone(paris) + timedelta(0.5)
    )
    data = json.loads(render.as_json(report))
    assert data["started_at"] == "2026-11-29T07:30:00+00:00"
    assert data["exit_code"] == 0
    canary = data["checks"][3]
    assert canary["figures"] == {
        "queue_ms": 3.5,
        "execute_ms": 101.0,
        "runs_per_s": 431.2,
        "total_s": 0.12,
    }


def test_json_writes_a_figure_that_is_not_a_number_as_null() -> None:
    report = _report(passed("a.b", "t", "e", p99_ms=float("nan"), max_ms=float("inf")))
    data = json.loads(render.as_json(report))
    assert data["checks"][0]["figures"] == {"p99_ms": None, "max_ms": None}


def test_json_escapes_what_a_terminal_acts_on_and_decodes_to_the_evidence() -> None:
    text = render.as_json(HOSTILE)
    assert _only_shown(text) and "\\u001b[2J" in text and "😀" in text
    data = json.loads(text)
    assert data["checks"][0]["evidence"] == HOSTILE_EVIDENCE
    assert data["environment"]["host"] == "<h|o>\x00"


# -- JUnit XML ----------------------------------------------------------------------------------


def _junit(report: Report) -> ET.Element:
    text = render.junit(report)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def test_junit_counts_on_the_suites_and_one_testsuite_per_section() -> None:
    root = _junit(MIXED)
    assert root.tag == "testsuites"
    assert root.attrib == {
        "name": "pa doctor",
        "tests": "5",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "3.420",
    }
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["redis", "database", "ai"]
    assert [(s.get("tests"), s.get("failures"), s.get("skipped")) for s in suites] == [
        ("2", "0", "0"),
        ("2", "1", "0"),
        ("1", "0", "1"),
    ]
    assert {s.get("timestamp") for s in suites} == {"2026-11-29T07:30:00+00:00"}


def test_junit_testcases_carry_class_name_and_id() -> None:
    cases = _junit(MIXED).findall("testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("doctor.redis", "redis.ping"),
        ("doctor.redis", "redis.eviction"),
        ("doctor.database", "database.migrations"),
        ("doctor.database", "database.connection"),
        ("doctor.ai", "ai.agent"),
    ]
    assert all(c.get("time") == "0.000" for c in cases)


def test_junit_failure_skip_and_warning() -> None:
    root = _junit(MIXED)
    failure = root.find("testsuite/testcase[@name='database.migrations']/failure")
    assert failure is not None
    assert failure.attrib == {"message": "schema at 0007, newest is 0009", "type": "fail"}
    assert failure.text is not None and "fix: run `pa db upgrade`" in failure.text
    skip = root.find("testsuite/testcase[@name='ai.agent']/skipped")
    assert skip is not None and skip.get("message") == "the offline agent is configured"
    warning = root.find("testsuite/testcase[@name='redis.eviction']")
    assert warning is not None
    assert warning.find("failure") is None and warning.find("skipped") is None
    assert warning.findtext("system-out") == (
        "WARNING: maxmemory-policy is allkeys-lru\nfix: set maxmemory-policy noeviction"
    )
    assert len(root.findall(".//failure")) == 1 and len(root.findall(".//skipped")) == 1


def test_junit_suites_carry_the_environment_as_properties() -> None:
    for suite in _junit(HEALTHY).findall("testsuite"):
        props = [(p.get("name"), p.get("value")) for p in suite.findall("properties/property")]
        assert props == list(ENVIRONMENT.items())


def test_junit_is_well_formed_with_hostile_text() -> None:
    root = _junit(HOSTILE)
    failure = root.find("testsuite/testcase[@name='celery.workers']/failure")
    assert failure is not None
    message = failure.get("message")
    assert message == "ab[2J ]]> <b>&amp; | x\ny  😀 1m "
    assert failure.text is not None and "fix: restart <worker> | ]]>" in failure.text
    warning = root.find("testsuite/testcase[@name='redis.auth']")
    assert warning is not None and warning.findtext("system-out", "").startswith("WARNING: said ")
    props = dict((p.get("name"), p.get("value")) for p in root.iter("property"))
    assert props == {"deployment": "compose [31m", "host": "<h|o>"}
    assert root.find("testsuite/testcase[@name='redis.ping']") is not None


def test_junit_of_an_empty_report() -> None:
    root = _junit(_report(seconds=0))
    assert root.get("tests") == "0" and root.findall("testsuite") == []


# -- Markdown -----------------------------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section, up to the next one."""
    after = text.split(f"\n## {heading}\n", 1)[1]
    return after.split("\n## ", 1)[0]


def test_markdown_has_every_section_in_order() -> None:
    text = render.markdown(MIXED)
    assert text.startswith("# Validation report\n\nDate: 2026-11-29 07:30:00 UTC")
    assert "duration 3.4 s" in text.splitlines()[2]
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Environment",
        "## Summary",
        "## Checks",
        "## Figures",
        "## Failure analysis",
    ]
    assert "| database | postgresql://pa:***@db:5432/pa |" in _section(text, "Environment")


@pytest.mark.parametrize(
    ("report", "verdict"),
    [
        pytest.param(HEALTHY, "**Verdict: valid** (exit code 0)", id="valid"),
        pytest.param(
            _report(warned("a.b", "t", "e", "f")),
            "**Verdict: valid with warnings** (exit code 1)",
            id="warnings",
        ),
        pytest.param(MIXED, "**Verdict: not valid** (exit code 2)", id="failed"),
    ],
)
def test_markdown_summary_says_whether_the_deployment_is_valid(
    report: Report, verdict: str
) -> None:
    summary = _section(render.markdown(report), "Summary")
    assert verdict in summary


def test_markdown_summary_counts() -> None:
    summary = _section(render.markdown(MIXED), "Summary")
    assert "2 passed, 1 warning, 1 failed, 1 skipped in 3.4 s" in summary
    for row in ("| PASS | 2 |", "| WARN | 1 |", "| FAIL | 1 |", "| SKIP | 1 |"):
        assert row in summary


def test_markdown_checks_are_a_table_per_section() -> None:
    checks = _section(render.markdown(MIXED), "Checks")
    assert [line for line in checks.splitlines() if line.startswith("### ")] == [
        "### redis",
        "### database",
        "### ai",
    ]
    assert checks.count("| check | verdict | evidence |") == 3
    assert "| database.migrations | FAIL | schema at 0007, newest is 0009 |" in checks


def test_markdown_figures_list_every_measured_check_with_units() -> None:
    figures = _section(render.markdown(HEALTHY), "Figures")
    assert "| check | figure | value |" in figures
    for row in (
        "| redis.ping | latency_ms | 0.4 ms |",
        "| canary.run | queue_ms | 3.5 ms |",
        "| canary.run | execute_ms | 101 ms |",
        "| canary.run | runs_per_s | 431.2/s |",
        "| canary.run | total_s | 0.12 s |",
    ):
        assert row in figures
    assert "database.connection" not in figures
    assert "No figures." in _section(render.markdown(_report(passed("a.b", "t", "e"))), "Figures")


def test_markdown_failure_analysis_lists_failures_then_warnings_with_their_fix() -> None:
    analysis = _section(render.markdown(MIXED), "Failure analysis")
    assert [line for line in analysis.splitlines() if line.startswith("### ")] == [
        "### FAIL database.migrations: Schema at the newest migration",
        "### WARN redis.eviction: Redis keeps queued messages",
    ]
    assert "- Evidence: schema at 0007, newest is 0009" in analysis
    assert "- Fix: run `pa db upgrade`" in analysis
    assert "No failures." not in analysis
    assert "No failures." in _section(render.markdown(HEALTHY), "Failure analysis")


def test_markdown_escapes_pipes_and_line_breaks_in_cells() -> None:
    text = render.markdown(HOSTILE)
    row = next(line for line in text.splitlines() if line.startswith("| celery.workers |"))
    # Exactly the four delimiters of a three-cell row, the evidence's pipe escaped.
    assert row.replace("\\|", "").count("|") == 4
    assert "x<br>y" in row and "&lt;b>" in row and "<b>" not in row
    assert "\x1b" not in text and "\x00" not in text and "😀" in text
    assert _only_shown(text)
    assert "| host | &lt;h\\|o> |" in _section(text, "Environment")
    assert "| p\\|x_ms | 1.5 ms |" in _section(text, "Figures")
    assert "- Fix: restart &lt;worker> \\| ]]>" in _section(text, "Failure analysis")


def test_markdown_escapes_a_backslash_so_it_cannot_unescape_a_pipe() -> None:
    text = render.markdown(_report(passed("a.b", "t", "C:\\|x")))
    row = next(line for line in text.splitlines() if line.startswith("| a.b |"))
    assert row == "| a.b | PASS | C:\\\\\\|x |"


def test_every_format_is_registered() -> None:
    assert set(render.FORMATS) == {"table", "json", "junit", "markdown"}
    assert all(isinstance(render.FORMATS[name](MIXED), str) for name in render.FORMATS)
