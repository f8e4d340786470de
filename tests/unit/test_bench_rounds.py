"""The round a benchmark reports (``benchmarks/rounds.py``): the median, not the best."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rounds() -> Iterator[ModuleType]:
    """``benchmarks.rounds`` (the repository root is not installed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        from benchmarks import rounds

        yield rounds


def test_the_median_round_is_reported_whatever_order_the_rounds_ran_in(
    rounds: ModuleType,
) -> None:
    assert rounds.median_round([2.94, 2.98, 2.95], float) == 2.95
    assert rounds.median_round([(3, "c"), (1, "a"), (2, "b")], lambda r: r[0]) == (2, "b")
    assert rounds.median_round([7.0], float) == 7.0


def test_of_an_even_number_the_lower_middle_round_is_reported(rounds: ModuleType) -> None:
    assert rounds.median_round([4.0, 1.0, 3.0, 2.0], float) == 2.0


def test_no_round_is_refused(rounds: ModuleType) -> None:
    with pytest.raises(ValueError, match="no round"):
        rounds.median_round([], float)
