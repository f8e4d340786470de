"""The token arithmetic of the agent rate limit (pure: ``now`` is an argument), and its settings."""

from __future__ import annotations

import asyncio

import pytest

from personal_assistant.agents.factory import build_limiter
from personal_assistant.agents.ratelimit import Decision, Level, Limit, refill, take
from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError

FIVE = Limit(rate=2.0, burst=5)  # 2 tokens/s, 5 at most
ONE = Limit(rate=0.5, burst=1)  # one token every 2 s


@pytest.mark.parametrize(
    ("level", "now", "tokens"),
    [
        (None, 100.0, 5.0),  # never seen or expired: full
        (Level(0.0, 100.0), 100.0, 0.0),
        (Level(0.0, 100.0), 101.0, 2.0),
        (Level(1.5, 100.0), 101.25, 4.0),
        (Level(0.0, 100.0), 1000.0, 5.0),  # never more than the burst
        (Level(3.0, 100.0), 99.0, 3.0),  # a clock step back adds nothing (and takes nothing)
    ],
)
def test_refill(level: Level | None, now: float, tokens: float) -> None:
    assert refill(FIVE, level, now) == pytest.approx(tokens)


@pytest.mark.parametrize(
    ("buckets", "now", "expected"),
    [
        # one bucket
        ([(FIVE, None)], 10.0, Decision(True, 0.0, (Level(4.0, 10.0),))),
        ([(FIVE, Level(1.0, 10.0))], 10.0, Decision(True, 0.0, (Level(0.0, 10.0),))),
        ([(FIVE, Level(0.0, 10.0))], 10.0, Decision(False, 0.5)),
        ([(FIVE, Level(0.0, 10.0))], 10.25, Decision(False, 0.25)),
        ([(FIVE, Level(0.0, 10.0))], 10.5, Decision(True, 0.0, (Level(0.0, 10.5),))),
        ([(FIVE, Level(0.5, 10.0))], 10.0, Decision(False, 0.25)),
        # two buckets: all or nothing, the longest wait wins
        (
            [(FIVE, Level(2.0, 10.0)), (ONE, None)],
            10.0,
            Decision(True, 0.0, (Level(1.0, 10.0), Level(0.0, 10.0))),
        ),
        ([(FIVE, Level(2.0, 10.0)), (ONE, Level(0.0, 10.0))], 10.0, Decision(False, 2.0)),
        ([(FIVE, Level(0.0, 10.0)), (ONE, Level(0.0, 9.0))], 10.0, Decision(False, 1.0)),
        ([(FIVE, Level(0.0, 10.0)), (ONE, Level(0.0, 8.0))], 10.0, Decision(False, 0.5)),
    ],
)
def test_take(buckets: list[tuple[Limit, Level | None]], now: float, expected: Decision) -> None:
    decision = take(buckets, now)
    assert decision.granted == expected.granted
    assert decision.wait == pytest.approx(expected.wait)
    if not expected.granted:  # a denial takes nothing (its promises: tests below)
        assert [lv.tokens for lv in decision.levels] == pytest.approx(
            [refill(limit, level, now) for limit, level in buckets]
        )
        return
    assert len(decision.levels) == len(expected.levels)
    for got, want in zip(decision.levels, expected.levels, strict=True):
        assert (got.tokens, got.at) == pytest.approx((want.tokens, want.at))


def test_a_denial_takes_no_token_and_waiting_what_it_says_is_enough() -> None:
    level = Level(0.2, 50.0)
    denied = take([(FIVE, level)], 50.0)
    assert not denied.granted
    assert [(lv.tokens, lv.at) for lv in denied.levels] == [pytest.approx((0.2, 50.0))]
    assert take([(FIVE, level)], 50.0 + denied.wait + 1e-9).granted
    assert take(list(zip([FIVE], denied.levels, strict=True)), 50.0 + denied.wait + 1e-9).granted


def test_denied_callers_are_told_to_come_back_one_token_apart() -> None:
    """A hundred callers denied at once are spread at the bucket's rate: each is told to come
    back when a token will be there for it, after those told before it (no herd that wakes
    all at once and is denied again)."""
    level: Level | None = Level(0.0, 10.0)
    waits = []
    for _ in range(100):
        decision = take([(FIVE, level)], 10.0)
        assert not decision.granted
        waits.append(decision.wait)
        level = decision.levels[0]
    assert waits == pytest.approx([0.5 * (k + 1) for k in range(100)])
    # Promises made long ago no longer hold anyone back.
    assert take([(FIVE, level)], 200.0).granted
    later = take([(FIVE, Level(0.0, 200.0, level.tail if level else 0.0))], 200.0)
    assert later.wait == pytest.approx(0.5)


def test_a_grant_keeps_the_promises_made() -> None:
    promised = take([(FIVE, Level(0.0, 10.0))], 10.0).levels[0]
    granted = take([(FIVE, promised)], 10.6)
    assert granted.granted and granted.levels[0].tail == pytest.approx(promised.tail)
    assert take([(FIVE, granted.levels[0])], 10.6).wait == pytest.approx(promised.tail - 10.6)


def test_over_any_interval_at_most_rate_times_t_plus_burst() -> None:
    """Callers asking every 10 ms for 20 s: grants never outrun the bucket."""
    limit = Limit(rate=3.0, burst=4)
    level: Level | None = None
    grants: list[float] = []
    for step in range(2000):
        now = step / 100
        decision = take([(limit, level)], now)
        if decision.granted:
            level = decision.levels[0]
            grants.append(now)
    for i, start in enumerate(grants):
        for j in range(i, len(grants)):
            assert j - i + 1 <= limit.rate * (grants[j] - start) + limit.burst + 1e-9
    assert len(grants) == pytest.approx(4 + 3.0 * 19.99, abs=1)


@pytest.mark.parametrize(
    ("rate", "burst"), [(0.0, 1), (-1.0, 1), (float("inf"), 1), (float("nan"), 1), (1.0, 0)]
)
def test_limits_are_checked(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        Limit(rate, burst)


def test_key_lives_until_the_bucket_has_refilled() -> None:
    assert Limit(rate=2.0, burst=5).ttl_ms == 3500
    assert Limit(rate=1000.0, burst=1).ttl_ms == 1001


# --- Settings ------------------------------------------------------------------------------------


def settings(**values: str) -> Settings:
    return Settings.model_validate(values)


@pytest.mark.parametrize("variable", ["AGENT_RATE_PER_SECOND", "AGENT_USER_RATE_PER_SECOND"])
def test_a_rate_needs_redis(variable: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        settings(**{variable: "5"})
    assert err.value.field == variable and "REDIS_URL" in err.value.message


@pytest.mark.parametrize("prefix", ["AGENT", "AGENT_USER"])
def test_a_burst_needs_its_rate(prefix: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        settings(REDIS_URL="redis://127.0.0.1:6379/0", **{f"{prefix}_BURST": "3"})
    assert err.value.field == f"{prefix}_BURST"


def test_no_rate_no_limiter() -> None:
    assert build_limiter(settings(REDIS_URL="redis://127.0.0.1:6379/0")) is None


def test_a_burst_defaults_to_one_second_of_tokens() -> None:
    limiter = build_limiter(
        settings(
            REDIS_URL="redis://127.0.0.1:6379/0",
            REDIS_KEY_PREFIX="x:",
            AGENT_RATE_PER_SECOND="2.5",
            AGENT_USER_RATE_PER_SECOND="0.2",
        )
    )
    assert limiter is not None
    assert limiter.limits == (Limit(2.5, 3), Limit(0.2, 1))
    asyncio.run(limiter.aclose())
