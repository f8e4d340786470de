"""PNG charts of the measured series, drawn beside the tables of ``docs/performance.md``.

One function per chart; each takes the run's :class:`~benchmarks.report.Figure` list, draws
from the series one benchmark put in ``Figure.series`` and returns the PNG it wrote
(``<out_dir>/perf-<name>.png``), or None when no figure holds that series (the benchmark was
not run, or failed). matplotlib (the ``bench`` extra) is imported when a chart is drawn, with
the Agg canvas and no pyplot state; importing this module does nothing.

The series, as the benchmarks fill them:

* ``throughput`` (end to end): ``{"labels": [str, ...], "values": [runs/s, ...]}``
* ``lateness_ms`` (lateness): ``{"start": [ms, ...], "finish": [ms, ...]}``, raw samples
* ``claim_rate`` (claim): ``{"sizes": [tasks in the table, ...], "rates": [tasks/s, ...]}``
* ``inflight_memory`` (latency): ``{"in_flight": [n, ...], "pss_mib": [MiB, ...],
  "runs_per_s": [runs/s, ...]}``
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as Canvas


class Figure(Protocol):
    """What a chart reads of a :class:`benchmarks.report.Figure`."""

    @property
    def key(self) -> str: ...

    @property
    def series(self) -> dict[str, Any]: ...


IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
SIZE_IN = (7.0, 4.0)
DPI = 100


def available() -> bool:
    """Whether matplotlib is installed (the charts can be drawn)."""
    return importlib.util.find_spec("matplotlib") is not None


def _series(figures: Sequence[Figure], key: str, *fields: str) -> dict[str, Any] | None:
    """The series ``key`` from the first figure that has it with every field non-empty."""
    for figure in figures:
        series = figure.series.get(key)
        if isinstance(series, dict) and all(series.get(name) for name in fields):
            return series
    return None


def _canvas() -> tuple[Canvas, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as Canvas

    fig = Canvas(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Canvas, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"perf-{name}.png"
    fig.savefig(path, dpi=DPI)
    return path


def throughput(figures: Sequence[Figure], out_dir: Path = IMG) -> Path | None:
    """Bars: end to end beside the bare Celery and Dramatiq no-op drains, one run."""
    series = _series(figures, "throughput", "labels", "values")
    if series is None:
        return None
    labels = [str(label) for label in series["labels"]]
    values = [float(value) for value in series["values"]]
    fig, ax = _canvas()
    bars = ax.bar(labels, values, color=[f"C{i}" for i in range(len(values))])
    ax.bar_label(bars, labels=[f"{value:,.0f}/s" for value in values], padding=2)
    ax.set_title("End to end vs bare no-op drains (measured side by side)")
    ax.set_ylabel("runs (no-op messages) per second")
    ax.set_ylim(0, max(values) * 1.15)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out_dir, "throughput")


def lateness(figures: Sequence[Figure], out_dir: Path = IMG) -> Path | None:
    """Cumulative distribution of the start and finish lateness samples."""
    series = _series(figures, "lateness_ms", "start", "finish")
    if series is None:
        return None
    fig, ax = _canvas()
    smallest = 0.0
    for name in ("start", "finish"):
        samples = sorted(float(value) for value in series[name])
        share = [100 * (i + 1) / len(samples) for i in range(len(samples))]
        ax.step(samples, share, where="post", label=f"{name} ({len(samples):,} samples)")
        smallest = min(smallest, samples[0])
    for level in (50, 99):
        ax.axhline(level, color="grey", linestyle=":", linewidth=0.8)
    # Linear below 1 ms, logarithmic above: the body and the tail both stay readable.
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=smallest)
    ax.set_title("Firing lateness: share of runs at most this late (dotted: 50 % and 99 %)")
    ax.set_xlabel("lateness after the scheduled instant (ms, log scale above 1 ms)")
    ax.set_ylabel("runs (%)")
    ax.set_ylim(0, 100.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, out_dir, "lateness")


def claim_rate(figures: Sequence[Figure], out_dir: Path = IMG) -> Path | None:
    """The scheduler's claim rate (with the Redis publish) against the tasks in the table."""
    series = _series(figures, "claim_rate", "sizes", "rates")
    if series is None:
        return None
    sizes = [float(size) for size in series["sizes"]]
    rates = [float(rate) for rate in series["rates"]]
    fig, ax = _canvas()
    ax.plot(sizes, rates, marker="o")
    for size, rate in zip(sizes, rates, strict=True):
        ax.annotate(
            f"{rate:,.0f}/s", (size, rate), textcoords="offset points", xytext=(0, 7), ha="center"
        )
    ax.margins(x=0.08)
    wide = min(sizes) > 0 and max(sizes) / min(sizes) >= 10
    if wide:
        ax.set_xscale("log")
    ax.set_title("Scheduler claim rate vs table size (claim and Redis publish)")
    ax.set_xlabel("active tasks in the table" + (" (log scale)" if wide else ""))
    ax.set_ylabel("tasks claimed per second")
    ax.set_ylim(0, max(rates) * 1.2)
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, "claim-rate")


def inflight_memory(figures: Sequence[Figure], out_dir: Path = IMG) -> Path | None:
    """One worker process: PSS and runs/s against the number of runs in flight."""
    series = _series(figures, "inflight_memory", "in_flight", "pss_mib", "runs_per_s")
    if series is None:
        return None
    in_flight = [float(n) for n in series["in_flight"]]
    fig, ax = _canvas()
    memory = ax.plot(in_flight, [float(v) for v in series["pss_mib"]], marker="o", color="C0")
    ax.set_ylabel("worker PSS (MiB)", color="C0")
    ax.set_ylim(bottom=0)
    other = ax.twinx()
    runs = other.plot(in_flight, [float(v) for v in series["runs_per_s"]], marker="s", color="C1")
    other.set_ylabel("runs completed per second", color="C1")
    other.set_ylim(bottom=0)
    ax.legend([memory[0], runs[0]], ["PSS (left)", "runs/s (right)"], loc="upper left")
    ax.set_title("One worker process: memory and throughput vs runs in flight")
    ax.set_xlabel("runs in flight (one process)")
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, "inflight-memory")


class Chart(NamedTuple):
    series: str  # the key in Figure.series
    name: str  # the file is perf-<name>.png
    alt: str
    draw: Callable[[Sequence[Figure], Path], Path | None]


CHARTS = (
    Chart("throughput", "throughput", "End to end vs bare Celery and Dramatiq no-ops", throughput),
    Chart("lateness_ms", "lateness", "Firing lateness distribution, start and finish", lateness),
    Chart("claim_rate", "claim-rate", "Claim rate vs table size", claim_rate),
    Chart("inflight_memory", "inflight-memory", "Memory and runs/s vs in flight", inflight_memory),
)


def draw_all(figures: Sequence[Figure], out_dir: Path = IMG) -> dict[str, list[tuple[str, Path]]]:
    """Draw every chart whose series is there: ``{figure key: [(alt text, png), ...]}``, the
    figure being the one that holds the chart's series.

    A chart whose series is missing is not drawn, and its PNG from an earlier run is removed,
    so that the folder holds only what this run measured.
    """
    drawn: dict[str, list[tuple[str, Path]]] = {}
    for chart in CHARTS:
        path = chart.draw(figures, out_dir)
        if path is None:
            (out_dir / f"perf-{chart.name}.png").unlink(missing_ok=True)
            continue
        key = next(f.key for f in figures if chart.series in f.series)
        drawn.setdefault(key, []).append((chart.alt, path))
    return drawn
