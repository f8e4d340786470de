"""The per-key token bucket of the HTTP API (pure: each step takes ``now``)."""

from __future__ import annotations

import pytest

from personal_assistant.api.ratelimit import Bucket, Limiter, Verdict, take


def _run(
    times: list[float], *, per_minute: int, burst: int, bucket: Bucket | None = None
) -> list[Verdict]:
    verdicts = []
    for now in times:
        bucket, verdict = take(bucket, now, per_minute=per_minute, burst=burst)
        verdicts.append(verdict)
    return verdicts


def test_a_new_key_has_its_burst_then_waits() -> None:
    verdicts = _run([0.0] * 4, per_minute=60, burst=3)
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[-1].retry_after == 1  # one token a second


@pytest.mark.parametrize(
    ("per_minute", "elapsed", "retry_after"),
    [
        (60, 0.0, 1),  # a token a second: 1 s
        (6, 0.0, 10),  # a token every 10 s
        (6, 4.0, 6),  # 4 s of the 10 already gone
        (6, 9.5, 1),  # never less than 1 s (Retry-After is whole seconds)
        (1, 0.0, 60),
        (600_000, 0.0, 1),  # far less than a second: still 1
    ],
)
def test_retry_after_is_whole_seconds_until_the_next_token(
    per_minute: int, elapsed: float, retry_after: int
) -> None:
    bucket, first = take(None, 100.0, per_minute=per_minute, burst=1)
    assert first.allowed
    _, refused = take(bucket, 100.0 + elapsed, per_minute=per_minute, burst=1)
    assert not refused.allowed and refused.retry_after == retry_after


def test_tokens_come_back_at_the_rate_and_never_past_the_burst() -> None:
    bucket, _ = take(None, 0.0, per_minute=60, burst=2)
    bucket, _ = take(bucket, 0.0, per_minute=60, burst=2)
    # An hour idle refills to the burst only.
    verdicts = _run([3600.0, 3600.0, 3600.0], per_minute=60, burst=2, bucket=bucket)
    assert [v.allowed for v in verdicts] == [True, True, False]
    # Half a second brings half a token: not enough; a whole second, one.
    bucket, _ = take(None, 0.0, per_minute=60, burst=1)
    assert not take(bucket, 0.5, per_minute=60, burst=1)[1].allowed
    assert take(bucket, 1.0, per_minute=60, burst=1)[1].allowed


def test_a_clock_going_back_adds_no_token() -> None:
    bucket, _ = take(None, 10.0, per_minute=60, burst=1)
    _, verdict = take(bucket, 5.0, per_minute=60, burst=1)
    assert not verdict.allowed


def test_the_limiter_keeps_one_bucket_per_key() -> None:
    now = [0.0]
    limiter = Limiter(60, 2, clock=lambda: now[0])
    assert [limiter.check("pa_aaaaaaaa").allowed for _ in range(3)] == [True, True, False]
    assert limiter.check("pa_bbbbbbbb").allowed  # another key: its own bucket
    now[0] = 1.0
    assert limiter.check("pa_aaaaaaaa").allowed
    assert "pa_" not in repr(limiter)


def test_zero_per_minute_is_no_limit() -> None:
    limiter = Limiter(0, 1, clock=lambda: 0.0)
    assert all(limiter.check("pa_aaaaaaaa").allowed for _ in range(1000))
