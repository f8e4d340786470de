"""The operator's artefacts are built on the metric catalogue, and only on it.

``deploy/grafana/personal-assistant.json`` (the dashboard) and ``deploy/prometheus/alerts.yml``
(the alert rules) name metrics by hand; a renamed metric, a typo in a label or a label value
outside its closed set would give an empty panel or an alert that can never fire, and nothing
would say so. Every PromQL expression of both is read here and checked against
:mod:`personal_assistant.metrics.catalogue`:

* each metric it names is declared (a histogram through its ``_bucket``/``_count``/``_sum``
  series, never bare), and a counter or a histogram series is read over a range (``rate``,
  ``increase``), never as a raw value;
* each label matcher names a label the metric has (or ``job``, ``instance``, ``le``), with a
  value from the label's closed set where it has one; grouping labels, legends and the alerts'
  ``$labels`` name labels the expression's metrics carry;
* the dashboard shows the figures issue 13 asks for, and every metric of the catalogue;
* each alert rule has a ``for``, a severity, a summary and a description, and
  ``alerts_test.yml`` has a case where it fires and one where it must not.

``promtool`` checks the files themselves (tests/integration/test_prometheus_rules.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from personal_assistant.core.states import ProcessRole
from personal_assistant.metrics import catalogue
from personal_assistant.metrics.catalogue import Kind, Metric
from personal_assistant.workers.routing import QUEUES

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "personal-assistant.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"

BY_NAME = {metric.name: metric for metric in catalogue.ALL}
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})

#: What the dashboard must show (issue 13): throughput and failures, lateness, queue depth and
#: oldest message, in flight and its cap, agent latency and tokens, notifications, processes.
DASHBOARD_REQUIRED = (
    catalogue.RUNS_FINISHED,
    catalogue.RUN_LATENESS,
    catalogue.QUEUE_DEPTH,
    catalogue.QUEUE_OLDEST_AGE,
    catalogue.RUNS_IN_FLIGHT,
    catalogue.RUNS_IN_FLIGHT_LIMIT,
    catalogue.AGENT_CALL,
    catalogue.AGENT_TOKENS,
    catalogue.NOTIFICATIONS,
    catalogue.PROCESSES_LIVE,
)
ALERTS_REQUIRED = (
    "NoConsumerOnQueue",
    "SchedulerSilent",
    "LatenessP99High",
    "FailureRatioHigh",
    "OldestQueuedRunOld",
    "ChannelBroken",
    "AgentErrorBurst",
    "QueueBacklog",
)

#: The closed label sets, by label name (any metric) or by (metric, label).
CLOSED_BY_LABEL: dict[str, tuple[str, ...]] = {
    "queue": QUEUES,
    "role": tuple(role.value for role in ProcessRole),
}
CLOSED_BY_METRIC: dict[tuple[str, str], tuple[str, ...]] = {
    (catalogue.RUNS_FINISHED.name, "outcome"): catalogue.OUTCOMES,
    (catalogue.AGENT_ERRORS_TOTAL.name, "error"): catalogue.AGENT_ERRORS,
    (catalogue.NOTIFICATIONS.name, "result"): catalogue.NOTIFICATION_RESULTS,
    (catalogue.REAPER_ACTIONS_TOTAL.name, "action"): catalogue.REAPER_ACTIONS,
    (catalogue.CALENDAR_SYNCS.name, "result"): catalogue.SYNC_RESULTS,
}

# -- A small PromQL reader: enough to find the series an expression selects. ------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<matchers>\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\})
    | (?P<range>\[[^\]]*\])
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<other>.)
    """,
    re.VERBOSE,
)
_MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
AGGREGATORS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile"}
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = AGGREGATORS | GROUPING | {"bool", "and", "or", "unless", "offset", "inf", "nan"}


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]
    ranged: bool


@dataclass(frozen=True)
class Parsed:
    selectors: tuple[Selector, ...]
    grouping: frozenset[str]


def _tokens(expr: str) -> list[tuple[str, str]]:
    out = []
    for match in _TOKEN.finditer(expr):
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            out.append((kind, match.group()))
    return out


def _matchers(text: str) -> tuple[tuple[str, str, str], ...]:
    inner = text[1:-1]
    found = tuple((m[1], m[2], m[3]) for m in _MATCHER.finditer(inner))
    assert "".join(m[0] for m in _MATCHER.finditer(inner)).strip() == inner.strip(), text
    return found


def parse(expr: str) -> Parsed:
    """The series an expression selects, and the labels it groups or matches on."""
    tokens = _tokens(expr)
    selectors: list[Selector] = []
    grouping: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "ident" and text.lower() in GROUPING and following[1] == "(":
            end = next(j for j in range(i + 2, len(tokens)) if tokens[j][1] == ")")
            grouping |= {t for k, t in tokens[i + 2 : end] if k == "ident"}
            i = end + 1
            continue
        if kind == "ident" and text.lower() not in KEYWORDS and following[1] != "(":
            i += 1
            matchers: tuple[tuple[str, str, str], ...] = ()
            if i < len(tokens) and tokens[i][0] == "matchers":
                matchers = _matchers(tokens[i][1])
                i += 1
            ranged = i < len(tokens) and tokens[i][0] == "range"
            selectors.append(Selector(text, matchers, ranged))
            continue
        i += 1
    return Parsed(tuple(selectors), frozenset(grouping))


def resolve(name: str) -> tuple[Metric, str] | None:
    """The catalogue's metric a series name belongs to, and the histogram suffix if any."""
    if name in BY_NAME:
        return BY_NAME[name], ""
    for suffix in HISTOGRAM_SERIES:
        base = BY_NAME.get(name.removesuffix(suffix))
        if name.endswith(suffix) and base is not None and base.kind is Kind.HISTOGRAM:
            return base, suffix
    return None


def labels_of(parsed: Parsed) -> frozenset[str]:
    """Every label the expression's series carry."""
    labels = set(TARGET_LABELS)
    for selector in parsed.selectors:
        found = resolve(selector.name)
        if found is not None:
            labels |= set(found[0].labels) | ({"le"} if found[1] == "_bucket" else set())
    return frozenset(labels)


def problems(expr: str) -> list[str]:
    """What is wrong with an expression's use of the catalogue (empty: nothing)."""
    parsed = parse(expr)
    found: list[str] = []
    if not parsed.selectors:
        found.append("selects no series")
    for selector in parsed.selectors:
        found += _selector_problems(selector)
    if stray := parsed.grouping - labels_of(parsed):
        found.append(f"groups by labels its series do not carry: {sorted(stray)}")
    return found


def _selector_problems(selector: Selector) -> list[str]:
    resolved = resolve(selector.name)
    if resolved is None:
        return [f"{selector.name} is not in the catalogue"]
    metric, suffix = resolved
    found = []
    if metric.kind is Kind.HISTOGRAM and not suffix:
        found.append(f"{metric.name} is a histogram: read its _bucket, _count or _sum")
    if (metric.kind is Kind.COUNTER or suffix) and not selector.ranged:
        found.append(f"{selector.name} is a counter: read it over a range (rate, increase)")
    allowed = set(metric.labels) | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
    for label, op, value in selector.matchers:
        if label not in allowed:
            found.append(f"{selector.name} has no label {label!r}")
        closed = CLOSED_BY_METRIC.get((metric.name, label)) or CLOSED_BY_LABEL.get(label)
        if closed and op in ("=", "!=") and value not in closed:
            found.append(f"{selector.name}{{{label}{op}{value!r}}}: not one of {closed}")
    return found


# -- The files. ---------------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


# -- Dashboard. --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "target"),
    [
        pytest.param(title, target, id=f"{title}:{target['refId']}")
        for title, target in dashboard_targets()
    ],
)
def test_a_panel_reads_only_the_catalogue(title: str, target: dict[str, Any]) -> None:
    assert problems(target["expr"]) == [], (title, target["expr"])
    legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
    assert legend <= labels_of(parse(target["expr"])), (title, legend)


def test_the_dashboard_shows_what_the_issue_asks_for_and_every_metric() -> None:
    used = {
        found[0].name
        for _, target in dashboard_targets()
        for selector in parse(target["expr"]).selectors
        if (found := resolve(selector.name)) is not None
    }
    assert {metric.name for metric in DASHBOARD_REQUIRED} <= used
    assert sorted(set(BY_NAME) - used) == []


def test_the_dashboard_is_importable() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 39
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        x, w = panel["gridPos"]["x"], panel["gridPos"]["w"]
        assert x >= 0 and x + w <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert panel["targets"], panel["title"]
            assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]


# -- Alert rules. ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_an_alert_reads_only_the_catalogue(rule: dict[str, Any]) -> None:
    assert problems(rule["expr"]) == [], rule["expr"]
    templated = " ".join(rule["annotations"].values())
    assert set(re.findall(r"\$labels\.(\w+)", templated)) <= labels_of(parse(rule["expr"]))


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_an_alert_says_how_bad_and_what_to_do(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert set(rule["annotations"]) >= {"summary", "description"}


def test_the_rules_are_the_issues() -> None:
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert [group["name"] for group in loaded["groups"]] == ["personal-assistant"]
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    assert set(ALERTS_REQUIRED) <= set(names)


def test_each_alert_has_a_firing_case_and_a_silent_case() -> None:
    cases = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))
    assert cases["rule_files"] == ["alerts.yml"]
    fires: set[str] = set()
    silent: set[str] = set()
    for test in cases["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert (names - fires, names - silent) == (set(), set())


# -- The reader itself. -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum by (outcome) (rate(pa_runs_finished_total[5m]))", []),
        ('max by (queue) (pa_queue_consumers{queue="ai_tasks"}) == 0', []),
        ("pa_runs_finished", ["pa_runs_finished is not in the catalogue"]),
        ("up == 0", ["up is not in the catalogue"]),
        (
            "pa_runs_finished_total > 0",
            ["pa_runs_finished_total is a counter: read it over a range (rate, increase)"],
        ),
        (
            "rate(pa_run_lateness_seconds[5m])",
            ["pa_run_lateness_seconds is a histogram: read its _bucket, _count or _sum"],
        ),
        ("rate(pa_queue_depth_bucket[5m])", ["pa_queue_depth_bucket is not in the catalogue"]),
        (
            'rate(pa_runs_finished_total{outcome="failure"}[5m])',
            [f"pa_runs_finished_total{{outcome='failure'}}: not one of {catalogue.OUTCOMES}"],
        ),
        ('pa_queue_depth{queue_name="x"}', ["pa_queue_depth has no label 'queue_name'"]),
        (
            "sum by (queue) (pa_processes_live)",
            ["groups by labels its series do not carry: ['queue']"],
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(pa_agent_call_seconds_bucket[5m]))) > 1e-9",
            [],
        ),
    ],
)
def test_the_reader_finds_what_is_wrong(expr: str, expected: list[str]) -> None:
    assert problems(expr) == expected
