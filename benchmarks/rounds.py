"""The round a benchmark reports when it runs a measurement several times (pure).

A figure that decides a target runs in rounds, and its row gives the median round, not the
best: single rounds of the same code moved by a quarter to a third from one run of the
benchmark to the next on this kind of machine (docs/performance.md, each benchmark's notes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["median_round"]

T = TypeVar("T")


def median_round(rounds: Sequence[T], key: Callable[[T], float]) -> T:
    """The round of median ``key`` (of an even number, the lower middle one)."""
    if not rounds:
        raise ValueError("no round to choose from")
    return sorted(rounds, key=key)[(len(rounds) - 1) // 2]
