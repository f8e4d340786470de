"""Where a latency-bound phase loses time, wave by wave (benchmarks/waves.py): the runs in the
order they started, ``level`` at a time; what each wave takes beyond the model's delay adds up
to the whole shortfall against the ceiling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """``benchmarks.waves`` (the repository root is not installed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        from benchmarks import waves

        yield waves


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_waves_end_at_each_slot_chains_last_finish(bench: ModuleType) -> None:
    # 2 slots, 6 runs of 2 s: wave 0 starts late (0.5 s), wave 1 adds 0.25 s, wave 2 none.
    runs = [
        (at(4.75), at(6.75)),
        (at(0.0), at(2.0)),
        (at(2.75), at(4.75)),
        (at(0.5), at(2.5)),
        (at(2.0), at(4.0)),
        (at(4.5), at(6.5)),
    ]
    found = bench.waves_of(runs, start=START, level=2, delay=2.0)
    assert found.ends == (2.5, 4.75, 6.75)
    assert found.excess == pytest.approx((0.5, 0.25, 0.0))
    # The excess adds up to the whole shortfall: seconds = waves x delay + sum(excess).
    assert sum(found.excess) == pytest.approx(found.ends[-1] - 3 * 2.0)


def test_a_last_wave_of_fewer_runs_counts_too(bench: ModuleType) -> None:
    runs = [(at(0.0), at(2.0)), (at(0.1), at(2.1)), (at(2.1), at(4.3))]
    found = bench.waves_of(runs, start=START, level=2, delay=2.0)
    assert found.ends == (2.1, 4.3)
    assert found.excess == pytest.approx((0.1, 0.2))


def test_the_note_names_each_wave_end_and_the_excess(bench: ModuleType) -> None:
    note = bench.Waves((2.5, 4.75, 6.75), 2.0).note()
    assert "ended 2.50 / 4.75 / 6.75 s after the claim began" in note
    assert "wave 0 took 0.50 s" in note
    assert "waves 1-2 0.00-0.25 s each (0.25 s in all)" in note
    assert "waves 1-" not in bench.Waves((2.4,), 2.0).note()


@pytest.mark.parametrize("level", [0, -1])
def test_no_slot_is_refused(bench: ModuleType, level: int) -> None:
    with pytest.raises(ValueError, match="one slot"):
        bench.waves_of([(at(0), at(2))], start=START, level=level, delay=2.0)


def test_no_run_is_refused(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="one run"):
        bench.waves_of([], start=START, level=2, delay=2.0)
