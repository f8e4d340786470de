"""The benchmark charts (benchmarks/plots.py) drawn from made-up figures: each chart is written
as a PNG, a missing series draws nothing, and the page links each chart under its benchmark.

Only the drawing is checked here; the figures themselves come from ``make bench``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"

SERIES: dict[str, tuple[str, dict[str, Any]]] = {
    "throughput": (
        "e2e",
        {
            "labels": ["end to end", "bare Celery no-op", "Dramatiq no-op"],
            "values": [1330.0, 236.0, 2715.0],
        },
    ),
    "lateness_ms": (
        "lateness",
        {
            "start": [0.0, 0.4, *(float(i % 50) for i in range(2000)), 120.0],
            "finish": [2.0, *(float(i % 90) + 3 for i in range(2000)), 400.0],
        },
    ),
    "claim_rate": (
        "claim",
        {"sizes": [10_000, 100_000, 1_000_000], "rates": [21_000.0, 18_500.0, 9_200.0]},
    ),
    "inflight_memory": (
        "latency",
        {
            "in_flight": [100, 500, 2000],
            "pss_mib": [90.0, 111.0, 260.0],
            "runs_per_s": [48, 205, 700],
        },
    ),
}
CHARTS = {
    "throughput": "throughput",
    "lateness_ms": "lateness",
    "claim_rate": "claim_rate",
    "inflight_memory": "inflight_memory",
}


@pytest.fixture(scope="module")
def bench() -> Iterator[tuple[ModuleType, ModuleType]]:
    """``benchmarks.plots`` and ``benchmarks.report`` (the repository root is not installed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        from benchmarks import plots, report

        yield plots, report


def _figures(report: ModuleType, *series: str) -> list[Any]:
    return [
        report.Figure(
            SERIES[name][0],
            f"Benchmark {SERIES[name][0]}",
            (report.Row("a figure", 1.0, "x"),),
            method="How.",
            series={name: SERIES[name][1]},
        )
        for name in series
    ]


@pytest.mark.parametrize("series", sorted(SERIES))
def test_each_chart_is_written_as_a_png(
    bench: tuple[ModuleType, ModuleType], tmp_path: Path, series: str
) -> None:
    plots, report = bench
    draw = getattr(plots, CHARTS[series])
    path = draw(_figures(report, series), tmp_path)
    assert path is not None and path.parent == tmp_path and path.name.startswith("perf-")
    assert path.read_bytes().startswith(PNG)


@pytest.mark.parametrize("series", sorted(SERIES))
def test_a_missing_series_draws_nothing(
    bench: tuple[ModuleType, ModuleType], tmp_path: Path, series: str
) -> None:
    plots, report = bench
    others = [name for name in SERIES if name != series]
    empty = report.Figure("e2e", "Empty", (), method="", series={series: {}})
    assert getattr(plots, CHARTS[series])([*_figures(report, *others), empty], tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_draw_all_files_each_chart_under_its_benchmark(
    bench: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    plots, report = bench
    stale = tmp_path / "perf-claim-rate.png"
    stale.write_bytes(PNG)
    drawn = plots.draw_all(_figures(report, "throughput", "lateness_ms"), tmp_path)
    assert {key: [path.name for _, path in pairs] for key, pairs in drawn.items()} == {
        "e2e": ["perf-throughput.png"],
        "lateness": ["perf-lateness.png"],
    }
    assert not stale.exists()  # not measured in this run: no picture of an older one


def test_the_page_links_each_chart_in_its_section(bench: tuple[ModuleType, ModuleType]) -> None:
    _, report = bench
    figures = _figures(report, "throughput", "claim_rate")
    images = {"claim": [("Claim rate vs table size", "img/perf-claim-rate.png")]}
    page = report.markdown(figures, {}, datetime(2026, 1, 1, tzinfo=UTC), 60.0, False, images)
    e2e, claim = page.split("\n## Benchmark e2e\n")[1].split("\n## Benchmark claim\n")
    assert "![" not in e2e
    assert "![Claim rate vs table size](img/perf-claim-rate.png)" in claim
    assert "drawn by `make bench`" in page
    without = report.markdown(figures, {}, datetime(2026, 1, 1, tzinfo=UTC), 60.0, False, None)
    assert "![" not in without and "matplotlib was not installed" in without


def test_without_matplotlib_the_page_is_written_without_charts(
    bench: tuple[ModuleType, ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plots, report = bench
    monkeypatch.setattr(plots, "available", lambda: False)
    assert report.draw_charts(_figures(report, *SERIES)) is None
    assert "matplotlib is not installed" in capsys.readouterr().out
