"""What happens after an attempt (pure): retry with backoff, or a final state.

A run held back before its agent was called (the rate limiter asked for a longer wait than the
run may spend) made no attempt: :func:`after_deferral` sends it back to the queue for when it
may be tried, without counting an attempt or a failure.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from personal_assistant.core.backoff import RetryPolicy
from personal_assistant.core.states import RunState


@dataclass(frozen=True)
class AfterFailure:
    state: RunState  # RETRYING or FAILED
    retry_at: datetime | None


def after_failure(
    *,
    attempt: int,
    max_retries: int,
    permanent: bool,
    now: datetime,
    policy: RetryPolicy,
    rand: Callable[[], float] | None = None,
) -> AfterFailure:
    """A failed attempt ``attempt`` (1-based) retries unless permanent or out of retries."""
    if permanent or attempt > max_retries:
        return AfterFailure(RunState.FAILED, None)
    return AfterFailure(RunState.RETRYING, now + timedelta(seconds=policy.delay(attempt, rand)))


def failure_text(error: str, attempt: int, *, final: bool) -> str:
    if final:
        noun = "attempt" if attempt == 1 else "attempts"
        return f"failed after {attempt} {noun}: {error}"
    return f"attempt {attempt} failed: {error}"


#: A deferred run comes back up to 20 % later than asked, so that runs held back together do
#: not all come back at once (as the rate limiter's own waiters do).
DEFER_JITTER = 0.2


def after_deferral(
    *, wait: float, now: datetime, rand: Callable[[], float] = random.random
) -> datetime:
    """When a run deferred by ``wait`` seconds (the limiter's answer) may be tried again."""
    return now + timedelta(seconds=max(0.0, wait) * (1.0 + DEFER_JITTER * rand()))


def deferral_text(reason: str) -> str:
    return f"deferred, no attempt made: {reason}"
