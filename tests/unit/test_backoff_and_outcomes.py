from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.core.backoff import RetryPolicy, compute_backoff
from personal_assistant.core.states import RunState
from personal_assistant.runs.outcomes import after_failure, failure_text

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (1, 0.5, 10.0),  # no jitter at the midpoint
        (2, 0.5, 20.0),
        (3, 0.5, 40.0),
        (10, 0.5, 600.0),  # capped
        (1, 0.0, 7.5),  # -25 %
        (1, 1.0, 12.5),  # +25 %
        (10, 1.0, 600.0),  # jitter never exceeds the cap
    ],
)
def test_compute_backoff(attempt: int, rand: float, expected: float) -> None:
    assert compute_backoff(attempt, base=10, max_delay=600, rand=lambda: rand) == expected


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError):
        compute_backoff(0, base=1, max_delay=1)


POLICY = RetryPolicy(base_seconds=10, max_seconds=600)


@pytest.mark.parametrize(
    ("attempt", "max_retries", "permanent", "state", "retry_in"),
    [
        (1, 3, False, RunState.RETRYING, 10),
        (3, 3, False, RunState.RETRYING, 40),
        (4, 3, False, RunState.FAILED, None),
        (1, 0, False, RunState.FAILED, None),
        (1, 3, True, RunState.FAILED, None),
    ],
)
def test_after_failure(
    attempt: int, max_retries: int, permanent: bool, state: RunState, retry_in: float | None
) -> None:
    decision = after_failure(
        attempt=attempt,
        max_retries=max_retries,
        permanent=permanent,
        now=NOW,
        policy=POLICY,
        rand=lambda: 0.5,
    )
    assert decision.state == state
    expected = None if retry_in is None else NOW + timedelta(seconds=retry_in)
    assert decision.retry_at == expected


def test_failure_text() -> None:
    assert failure_text("boom", 1, final=True) == "failed after 1 attempt: boom"
    assert failure_text("boom", 3, final=True) == "failed after 3 attempts: boom"
    assert failure_text("boom", 2, final=False) == "attempt 2 failed: boom"
