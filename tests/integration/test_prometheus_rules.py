"""``promtool`` on the Prometheus files of ``deploy/prometheus``, as CI runs it.

* ``promtool check rules alerts.yml``: the rules parse, each expression is valid PromQL;
* ``promtool test rules alerts_test.yml``: each alert fires on synthetic series made to fire it,
  with its labels and annotations, and stays silent on series made not to;
* ``promtool check config prometheus.yml``: the example scrape configuration is valid and
  loads ``alerts.yml`` (its ``rule_files`` are relative to the configuration's directory, so
  the command works from any directory);
* every query of ``deploy/grafana/personal-assistant.json`` is valid PromQL: each becomes a
  recording rule, Grafana's ``$__rate_interval`` read as 5m, that ``promtool check rules``
  parses.

And the unit tests are not vacuous: the same tests run on the rules with the failure-ratio
threshold written as a percentage (20, the original system's mistake of comparing a 0-100
figure with a fraction) must fail.

promtool comes with Debian's ``prometheus`` package: skipped where it is absent, failed when
``CI`` is set (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.services import require

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "personal-assistant.json"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    require(found is not None, "promtool (Debian's prometheus package)")
    assert found is not None
    return found


def promtool_run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "deploy/prometheus/alerts.yml"),
        ("test", "rules", "deploy/prometheus/alerts_test.yml"),
        ("check", "config", "deploy/prometheus/prometheus.yml"),
    ],
    ids=lambda args: " ".join(args),
)
def test_promtool_accepts(promtool: str, args: tuple[str, ...]) -> None:
    result = promtool_run(promtool, *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config_loads_the_rules(promtool: str) -> None:
    result = promtool_run(promtool, "check", "config", PROMETHEUS / "prometheus.yml")
    assert "alerts.yml" in result.stdout, result.stdout + result.stderr


def test_a_threshold_as_a_percentage_fails_the_rule_tests(promtool: str, tmp_path: Path) -> None:
    rules = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    fraction = "  ) > 0.2\n"
    assert rules.count(fraction) == 1
    (tmp_path / "alerts.yml").write_text(rules.replace(fraction, "  ) > 20\n"), encoding="utf-8")
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")

    result = promtool_run(promtool, "test", "rules", tmp_path / "alerts_test.yml")

    assert result.returncode != 0
    assert "FailureRatioHigh" in result.stdout + result.stderr


def _exprs(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        yield from (target["expr"] for target in panel.get("targets", []))
        yield from _exprs(panel.get("panels", []))


def test_the_dashboard_queries_are_promql(promtool: str, tmp_path: Path) -> None:
    exprs = list(_exprs(json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]))
    rules = [
        {"record": f"dashboard:query_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = promtool_run(promtool, "check", "rules", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout
