"""Where a latency-bound phase loses time against its ceiling, wave by wave (pure).

With ``level`` runs in flight and a model that answers after ``delay`` seconds, ``n`` runs
pass through the worker in ``n / level`` waves: each run, in the order the runs started,
takes the slot of the run ``level`` places before it. At the ceiling each wave ends ``delay``
seconds after the one before. What each wave takes beyond ``delay`` (its *excess*) adds up to
the whole shortfall: ``seconds = waves x delay + sum(excess)``. Wave 0's excess holds what the
first burst costs once (the claim of every due task, new connections to the model and to the
database); the later waves' excess is what a turn costs (answers stored, the next runs
claimed, their requests sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Waves:
    ends: tuple[float, ...]  # seconds from the start of the claim to each wave's last finish
    delay: float

    @property
    def excess(self) -> tuple[float, ...]:
        """Seconds each wave took beyond ``delay``, wave 0 counted from the claim's start."""
        starts = (0.0, *self.ends[:-1])
        return tuple(end - start - self.delay for start, end in zip(starts, self.ends, strict=True))

    def note(self) -> str:
        excess = self.excess
        ends = " / ".join(f"{end:.2f}" for end in self.ends)
        text = (
            f"the {len(self.ends)} waves ended {ends} s after the claim began (at the ceiling: "
            f"every {self.delay:g} s); beyond {self.delay:g} s, wave 0 took {excess[0]:.2f} s"
        )
        if len(excess) > 1:
            later = excess[1:]
            text += (
                f" and waves 1-{len(excess) - 1} {min(later):.2f}-{max(later):.2f} s each "
                f"({sum(later):.2f} s in all)"
            )
        return text


def waves_of(
    runs: Sequence[tuple[datetime, datetime]], *, start: datetime, level: int, delay: float
) -> Waves:
    """The waves of ``runs`` (``(started_at, finished_at)`` each) through ``level`` slots."""
    if level < 1 or not runs:
        raise ValueError("waves need at least one run and one slot")
    ordered = sorted(runs)
    ends = tuple(
        max(finished for _, finished in ordered[first : first + level]) - start
        for first in range(0, len(ordered), level)
    )
    return Waves(tuple(end.total_seconds() for end in ends), delay)
