"""The round a benchmark reports (``benchmarks/rounds.py``): the median, not the best."""

from __future__ import annotations

import pytest
from benchmarks.rounds import median_round


def test_the_median_round_is_reported_whatever_order_the_rounds_ran_in() -> None:
    assert median_round([2.94, 2.98, 2.95], float) == 2.95
    assert median_round([(3, "c"), (1, "a"), (2, "b")], lambda r: r[0]) == (2, "b")
    assert median_round([7.0], float) == 7.0


def test_of_an_even_number_the_lower_middle_round_is_reported() -> None:
    assert median_round([4.0, 1.0, 3.0, 2.0], float) == 2.0


def test_no_round_is_refused() -> None:
    with pytest.raises(ValueError, match="no round"):
        median_round([], float)
