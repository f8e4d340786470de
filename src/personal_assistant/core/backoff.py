"""Retry backoff: exponential with jitter, capped (pure), and the policy that applies it."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


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


@dataclass(frozen=True)
class RetryPolicy:
    """How long a failed attempt waits: :func:`compute_backoff` within these bounds."""

    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int, rand: Callable[[], float] | None = None) -> float:
        if rand is None:
            return compute_backoff(attempt, base=self.base_seconds, max_delay=self.max_seconds)
        return compute_backoff(
            attempt, base=self.base_seconds, max_delay=self.max_seconds, rand=rand
        )
