"""The health page's chart, laid out (pure): runs per hour as bars, and the most late start of
each hour as a line, over the last hours; the template draws it as inline SVG with
presentation attributes only (the CSP allows no inline style).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from personal_assistant.app.dashboard import Hour

__all__ = ["Chart", "layout"]

WIDTH, HEIGHT = 720, 240
#: Room for the axes' labels: left, right, top, bottom.
LEFT, RIGHT, TOP, BOTTOM = 40, 72, 16, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    failed_height: float  # the failed runs' part, drawn at the bottom of the bar
    label: str  # said by the bar's <title>


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    late: tuple[tuple[float, float], ...]  # the lateness line's points; none: nothing started
    hour_ticks: tuple[Tick, ...]
    runs_max: int
    late_max_s: float
    plot: tuple[float, float, float, float]  # left, top, right, bottom

    @property
    def late_points(self) -> str:
        """The lateness line as an SVG polyline's ``points``."""
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.late)


def _nice(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at least ``value`` (1 at least)."""
    step = 1.0
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def layout(hours: Sequence[Hour], zone: ZoneInfo) -> Chart:
    """The chart of ``hours`` (oldest first), its hour labels on the wall clock of ``zone``."""
    left, top, right, bottom = LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM
    span = (right - left) / max(1, len(hours))
    runs_max = int(_nice(max((h.runs for h in hours), default=0)))
    late_max = _nice(max((h.max_late_s or 0.0 for h in hours), default=0.0))
    bars: list[Bar] = []
    points: list[tuple[float, float]] = []
    ticks: list[Tick] = []
    for i, hour in enumerate(hours):
        x = left + i * span
        height = (bottom - top) * hour.runs / runs_max
        failed = (bottom - top) * hour.failed / runs_max
        start = hour.start.astimezone(zone)
        late = "nothing started" if hour.max_late_s is None else f"{hour.max_late_s:.1f} s late"
        label = f"{start:%H}:00 {hour.runs} run(s), {hour.failed} failed, at most {late}"
        bars.append(Bar(x + span * 0.15, bottom - height, span * 0.7, height, failed, label))
        if hour.max_late_s is not None:
            y = bottom - (bottom - top) * hour.max_late_s / late_max
            points.append((x + span / 2, y))
        if i % 6 == 0:
            ticks.append(Tick(x + span / 2, HEIGHT - 8, f"{start:%H}:00"))
    return Chart(
        WIDTH,
        HEIGHT,
        tuple(bars),
        tuple(points),
        tuple(ticks),
        runs_max,
        late_max,
        (left, top, right, bottom),
    )
