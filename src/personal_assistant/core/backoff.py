"""Retry backoff: exponential with jitter, capped (pure)."""

from __future__ import annotations

import random
from collections.abc import Callable


def compute_backoff(
    attempt: int,
    *,
    base: float,
    max_delay: float,
    factor: float = 2.0,
    jitter: float = 0.25,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after ``attempt`` failed (attempt >= 1).

    ``base * factor ** (attempt - 1)``, capped at ``max_delay``, then spread by up to
    ``±jitter`` of itself so that runs failing together do not retry together.
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    delay = min(max_delay, base * factor ** (attempt - 1))
    spread = delay * jitter * (2.0 * rand() - 1.0)
    return max(0.0, min(max_delay, delay + spread))
