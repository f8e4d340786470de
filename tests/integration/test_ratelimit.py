"""The agent rate limit on a real Redis: the Lua script mirrors the pure core, two limiter
instances (as two workers would hold) share the buckets, the per-user bucket holds one user back
while another proceeds, and a deadline ends the wait with a transient "rate limited" error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from personal_assistant.agents.base import AgentRequest
from personal_assistant.agents.openai_compat import OpenAICompatibleAgent
from personal_assistant.agents.ratelimit import Level, Limit, RateLimitedAgent, RateLimiter, take
from personal_assistant.errors import AgentError
from support.chat_server import ChatServer, completion, rate_limited
from support.services import REDIS_URL

pytestmark = pytest.mark.integration

GLOBAL = "ratelimit:agent:global"


def limiter(
    prefix: str, global_limit: Limit | None = None, user_limit: Limit | None = None
) -> RateLimiter:
    return RateLimiter.from_url(
        REDIS_URL, prefix=prefix, global_limit=global_limit, user_limit=user_limit
    )


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield conn
    conn.close()


def server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


def level(client: redis.Redis, key: str) -> Level | None:
    stored = client.hgetall(key)
    if not stored:
        return None
    return Level(float(stored["tokens"]), float(stored["at"]), float(stored.get("tail", 0.0)))


def grant_times(count: int, workers: list[RateLimiter], user_id: int = 1) -> list[float]:
    """``count`` concurrent acquisitions, spread over ``workers`` in turn, then closes them;
    returns the monotonic times at which each was granted, in order."""

    async def one(worker: RateLimiter) -> float:
        await worker.acquire(user_id, deadline=time.monotonic() + 30)
        return time.monotonic()

    async def run() -> list[float]:
        try:
            return sorted(
                await asyncio.gather(*(one(workers[i % len(workers)]) for i in range(count)))
            )
        finally:
            for worker in workers:
                await worker.aclose()

    return asyncio.run(run())


def assert_within(times: list[float], limit: Limit, slack: int = 1) -> None:
    """Over every interval between two grants: count <= rate * t + burst (+ measuring slack)."""
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            allowed = limit.rate * (times[j] - start) + limit.burst + slack
            assert j - i + 1 <= allowed, (i, j, times[j] - start)


# --- The Lua script is the core's arithmetic -----------------------------------------------------

FIVE = Limit(rate=2.0, burst=5)
SLOW = Limit(rate=0.5, burst=1)


@pytest.mark.parametrize(
    ("seeds", "user_limit"),
    [
        ((None, None), None),  # a bucket never seen is full
        (((0.0, -0.1), None), None),  # empty 0.1 s ago: denied, wait 0.4 s
        (((0.5, -1.0), None), None),  # refilled to 2.5: granted, 1.5 left
        (((4.0, -60.0), None), None),  # capped at the burst
        (((3.0, 0.0), None), SLOW),  # the global bucket grants, a fresh user bucket too
        (((3.0, 0.0), (0.0, -0.5)), SLOW),  # the user bucket denies: nothing is taken anywhere
    ],
)
def test_the_script_mirrors_the_core(
    redis_prefix: str,
    client: redis.Redis,
    seeds: tuple[tuple[float, float] | None, tuple[float, float] | None],
    user_limit: Limit | None,
) -> None:
    keys = [f"{redis_prefix}{GLOBAL}", f"{redis_prefix}ratelimit:agent:user:7"]
    limits = [FIVE, user_limit]
    before: list[Level | None] = []
    now = server_time(client)
    for key, seed in zip(keys, seeds, strict=True):
        if seed is not None:
            client.hset(key, mapping={"tokens": seed[0], "at": now + seed[1]})
        before.append(None if seed is None else Level(seed[0], now + seed[1]))

    async def attempt() -> float:
        one = limiter(redis_prefix, FIVE, user_limit)
        try:
            return await one.try_take(7)
        finally:
            await one.aclose()

    wait = asyncio.run(attempt())
    after = server_time(client)
    buckets = [(lim, lvl) for lim, lvl in zip(limits, before, strict=True) if lim is not None]
    expected = take(buckets, after)
    assert (wait == 0.0) == expected.granted
    assert wait == pytest.approx(expected.wait, abs=0.05)
    stored = [level(client, key) for key, lim in zip(keys, limits, strict=True) if lim is not None]
    for got, want in zip(stored, expected.levels, strict=True):
        assert got is not None
        assert got.tokens == pytest.approx(want.tokens, abs=0.05)
        assert want.at - 1 < got.at <= want.at
        assert got.tail == pytest.approx(want.tail, abs=0.05)  # a denial's promise
    if expected.granted:
        assert 0 < client.pttl(keys[0]) <= FIVE.ttl_ms
    else:  # the key lives until its promise has passed
        assert 0 < client.pttl(keys[0]) <= FIVE.ttl_ms + 1000 * (expected.wait + 0.5) + 50


# --- Across workers, per user, deadlines ---------------------------------------------------------


def test_two_limiters_share_the_global_bucket(redis_prefix: str, client: redis.Redis) -> None:
    limit = Limit(rate=20.0, burst=5)
    workers = [limiter(redis_prefix, limit), limiter(redis_prefix, limit)]
    count = 60
    began = time.monotonic()
    times = grant_times(count, workers)
    assert len(times) == count
    assert_within(times, limit)
    # 5 at once, then 55 more at 20/s: at least 2.75 s in all (measured, so a little less)
    assert times[-1] - began >= (count - limit.burst) / limit.rate * 0.9
    assert set(client.scan_iter(match=f"{redis_prefix}*")) == {f"{redis_prefix}{GLOBAL}"}


def test_one_user_waits_while_another_proceeds(redis_prefix: str) -> None:
    per_user = Limit(rate=2.0, burst=1)
    workers = [
        limiter(redis_prefix, Limit(rate=1000.0, burst=100), per_user),
        limiter(redis_prefix, Limit(rate=1000.0, burst=100), per_user),
    ]
    granted: dict[int, list[float]] = {1: [], 2: []}

    async def acquire(worker: RateLimiter, user_id: int) -> None:
        await worker.acquire(user_id, deadline=time.monotonic() + 30)
        granted[user_id].append(time.monotonic())

    async def run() -> None:
        await asyncio.gather(
            *(acquire(workers[i % 2], 1) for i in range(4)), acquire(workers[1], 2)
        )
        for worker in workers:
            await worker.aclose()

    began = time.monotonic()
    asyncio.run(run())
    first, second = sorted(granted[1]), granted[2]
    assert len(first) == 4 and len(second) == 1
    assert second[0] < first[1]  # user 2 did not queue behind user 1's bucket
    assert_within(first, per_user, slack=0)
    assert first[-1] - began >= 3 / per_user.rate * 0.9


def test_a_deadline_ends_the_wait(redis_prefix: str) -> None:
    limit = Limit(rate=2.0, burst=1)

    async def run() -> tuple[AgentError, float]:
        one = limiter(redis_prefix, limit)
        try:
            await one.acquire(3, deadline=time.monotonic() + 5)
            with pytest.raises(AgentError) as err:
                await one.acquire(3, deadline=time.monotonic() + 0.1)
            began = time.monotonic()
            await one.acquire(3, deadline=time.monotonic() + 5)
            return err.value, time.monotonic() - began
        finally:
            await one.aclose()

    error, waited = asyncio.run(run())
    assert error.message.startswith("rate limited: ") and not error.permanent
    assert waited >= 0.3  # the bucket was empty: the next token came about 0.5 s later


# --- The wrapping agent counts every HTTP attempt ------------------------------------------------

WHEN = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
REQUEST = AgentRequest(
    task_id=3,
    run_id=11,
    title="Inbox summary",
    instruction="Summarise what arrived overnight.",
    task_type="periodic_task",
    ai_context={},
    owner_name="Ada",
    timezone="Europe/Paris",
    scheduled_for=WHEN,
    local_time=WHEN.astimezone(ZoneInfo("Europe/Paris")),
    attempt=1,
    user_id=42,
)


def test_retries_take_tokens_too(redis_prefix: str, client: redis.Redis) -> None:
    """Burst 2, no refill to speak of: a call retried once after a 429 uses both tokens."""

    async def run(server: ChatServer) -> AgentError:
        one = limiter(redis_prefix, user_limit=Limit(rate=0.001, burst=2))
        inner = OpenAICompatibleAgent(
            server.base_url, "gpt-test", timeout=5.0, before_retry=one.acquire_for
        )
        agent = RateLimitedAgent(inner, one, max_wait=0.5)
        try:
            assert (await agent.complete(REQUEST)).text == "ok"
            with pytest.raises(AgentError) as err:
                await agent.complete(REQUEST)
            return err.value
        finally:
            await agent.aclose()

    with ChatServer() as server:
        server.script(rate_limited("0"), completion("ok"), completion("never sent"))
        error = asyncio.run(run(server))
        assert len(server.received) == 2
    assert error.message.startswith("rate limited: ")
    stored = level(client, f"{redis_prefix}ratelimit:agent:user:42")
    assert stored is not None and stored.tokens < 0.01
