"""What happens after an attempt (pure): retry with backoff, or a final state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from personal_assistant.core.backoff import compute_backoff
from personal_assistant.core.states import RunState


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int, rand: Callable[[], float] | None = None) -> float:
        if rand is None:
            return compute_backoff(attempt, base=self.base_seconds, max_delay=self.max_seconds)
        return compute_backoff(
            attempt, base=self.base_seconds, max_delay=self.max_seconds, rand=rand
        )


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
