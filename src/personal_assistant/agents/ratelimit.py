"""A rate limit on agent calls that holds across every worker: token buckets in Redis.

Two buckets may apply to a call: a global one (``AGENT_RATE_PER_SECOND``, ``AGENT_BURST``) and
one per user (``AGENT_USER_RATE_PER_SECOND``, ``AGENT_USER_BURST``). A bucket holds at most
``burst`` tokens and refills at ``rate`` tokens per second; a call takes one token from each
bucket that applies, from all of them or from none. So, over any interval of ``t`` seconds, at
most ``rate * t + burst`` calls start, however many workers there are.

The arithmetic is :func:`take`, a pure function of ``now``. :data:`TAKE_SCRIPT` is the same
arithmetic in one Lua script, run atomically by Redis with Redis's own clock (``TIME``), so
the workers' clocks do not matter. A bucket is a hash (``tokens``, ``at``) under the configured
key prefix; a missing key is a full bucket, and a key expires once it would have refilled.

The buckets pace the callers they deny: a denied caller is told to come back when a token
will be there *for it*, after the callers denied before it (each bucket keeps ``tail``, the
time promised to the last one, and moves it on by one token's time per denial). So a thousand
callers denied at once come back one token apart, instead of all at once to be denied again.
It is pacing, not a reservation: a caller that comes back finds the token unless a newcomer
took it first, and is then told to come back after the others. A denied caller that may wait
(within its deadline) sleeps for the time it was told and asks again. All keys of one call
must live on one Redis node (no Redis Cluster slot tags here).

A call whose wait would outlast its deadline raises :class:`RateLimited` with the wait the
buckets asked for, before the agent is called: the worker puts the run back in the queue for
then (it waits as data, not in a worker slot: :data:`HOLD_SECONDS` is the longest a run holds
its slot for a token), and this costs the run no attempt. Between the HTTP attempts of one call
(:meth:`RateLimiter.acquire_for`), the provider has already been asked, so running out of time
there is an ordinary transient :class:`AgentError`.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis

from personal_assistant.agents.base import Agent, AgentReply, AgentRequest
from personal_assistant.errors import AgentError

MIN_SLEEP = 0.001  # seconds: float rounding can leave a deficit of a few nanoseconds
JITTER = 0.05  # a denied caller sleeps up to 5 % longer than it was told
#: The longest a run holds its worker slot waiting for a token; told to wait longer, it goes
#: back to the queue for the time it was told (see the module doc).
HOLD_SECONDS = 1.0


class RateLimited(AgentError):
    """The buckets ask to wait ``wait`` seconds, longer than the caller may: not called."""

    def __init__(self, message: str, *, wait: float) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class Limit:
    """``rate`` tokens per second, at most ``burst`` at once."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be a positive number, not {self.rate!r}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst!r}")

    @property
    def ttl_ms(self) -> int:
        """How long a bucket's key must live: until it has refilled, plus a second."""
        return math.ceil(1000 * self.burst / self.rate) + 1000


@dataclass(frozen=True)
class Level:
    """A bucket's stored state: ``tokens`` left at time ``at`` (seconds), and ``tail``, the
    time after which the next denied caller is told to come back (0: nobody is waiting)."""

    tokens: float
    at: float
    tail: float = 0.0


@dataclass(frozen=True)
class Decision:
    granted: bool
    wait: float  # seconds until the call could be granted (0.0 when granted)
    levels: tuple[Level, ...] = ()  # the buckets' new states, when granted


def refill(limit: Limit, level: Level | None, now: float) -> float:
    """Tokens in a bucket at ``now``; a bucket never seen (or expired) is full."""
    if level is None:
        return float(limit.burst)
    elapsed = max(0.0, now - level.at)
    return min(float(limit.burst), level.tokens + elapsed * limit.rate)


def take(buckets: Sequence[tuple[Limit, Level | None]], now: float, cost: float = 1.0) -> Decision:
    """Take ``cost`` tokens from every bucket, or from none and say how long to wait.

    A denial takes nothing; it promises the caller the time when each bucket it lacks will
    have a token for it after the callers promised before (``tail``), and moves those tails on.
    """
    tokens = [refill(limit, level, now) for limit, level in buckets]
    tails = [level.tail if level is not None else 0.0 for _, level in buckets]
    short = [have < cost for have in tokens]
    if not any(short):
        return Decision(
            True,
            0.0,
            tuple(Level(have - cost, now, tail) for have, tail in zip(tokens, tails, strict=True)),
        )
    promised = max(
        max(tail, now + (cost - have) / limit.rate)
        for (limit, _), have, tail, lacking in zip(buckets, tokens, tails, short, strict=True)
        if lacking
    )
    levels = tuple(
        Level(have, now, promised + cost / limit.rate if lacking else tail)
        for (limit, _), have, tail, lacking in zip(buckets, tokens, tails, short, strict=True)
    )
    return Decision(False, promised - now, levels)


#: :func:`take` in Lua. KEYS: one hash per bucket. ARGV: cost, then rate, burst and key TTL in
#: milliseconds for each key. Returns ``{1, "0"}`` when granted, else ``{0, "<wait seconds>"}``
#: (a string: Redis truncates Lua numbers in replies to integers). A key lives until its bucket
#: has refilled and its last promise has passed.
TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local tokens, tails, short = {}, {}, {}
local denied = false
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local level = redis.call('HMGET', key, 'tokens', 'at', 'tail')
  local have = burst
  if level[1] and level[2] then
    local elapsed = math.max(0, now - tonumber(level[2]))
    have = math.min(burst, tonumber(level[1]) + elapsed * rate)
  end
  tokens[i] = have
  tails[i] = tonumber(level[3] or '0')
  short[i] = have < cost
  if short[i] then denied = true end
end
local promised = 0
if denied then
  for i, key in ipairs(KEYS) do
    if short[i] then
      local rate = tonumber(ARGV[3 * i - 1])
      promised = math.max(promised, tails[i], now + (cost - tokens[i]) / rate)
    end
  end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 1])
  local left = tokens[i]
  local tail = tails[i]
  if not denied then
    left = tokens[i] - cost
  elseif short[i] then
    tail = promised + cost / rate
  end
  redis.call('HSET', key, 'tokens', string.format('%.17g', left),
             'at', string.format('%.17g', now), 'tail', string.format('%.17g', tail))
  local ttl = tonumber(ARGV[3 * i + 1]) + math.max(0, math.ceil(1000 * (tail - now)))
  redis.call('PEXPIRE', key, ttl)
end
if denied then
  return {0, string.format('%.17g', promised - now)}
end
return {1, '0'}
"""


class RateLimiter:
    """The global and per-user buckets of agent calls, in Redis, shared by every worker."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "",
        global_limit: Limit | None = None,
        user_limit: Limit | None = None,
    ) -> None:
        if global_limit is None and user_limit is None:
            raise ValueError("a rate limiter needs a global or a per-user limit")
        self._redis = redis
        self._prefix = prefix
        self._global = global_limit
        self._user = user_limit
        self._script = redis.register_script(TAKE_SCRIPT)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "",
        global_limit: Limit | None = None,
        user_limit: Limit | None = None,
        max_connections: int = 20,
    ) -> RateLimiter:
        """A limiter with a client of its own; waiters beyond ``max_connections`` queue."""
        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections)
        client = Redis(connection_pool=pool)
        return cls(client, prefix=prefix, global_limit=global_limit, user_limit=user_limit)

    @property
    def limits(self) -> tuple[Limit | None, Limit | None]:
        """The global and the per-user limit."""
        return self._global, self._user

    def _buckets(self, user_id: int) -> list[tuple[str, Limit]]:
        buckets: list[tuple[str, Limit]] = []
        if self._global is not None:
            buckets.append((f"{self._prefix}ratelimit:agent:global", self._global))
        if self._user is not None:
            buckets.append((f"{self._prefix}ratelimit:agent:user:{user_id}", self._user))
        return buckets

    async def try_take(self, user_id: int) -> float:
        """One attempt: 0.0 if a token was taken from every bucket, else the seconds to wait."""
        buckets = self._buckets(user_id)
        args: list[float | int] = [1]
        for _, limit in buckets:
            args += [limit.rate, limit.burst, limit.ttl_ms]
        granted, wait = await self._script(keys=[key for key, _ in buckets], args=args)
        return 0.0 if int(granted) else max(MIN_SLEEP, float(wait))

    async def acquire(self, user_id: int, deadline: float) -> None:
        """Wait for a token from every bucket; ``deadline`` is a ``time.monotonic()`` value.

        Raises :class:`RateLimited` ("rate limited: ...", transient, with the ``wait``) as soon
        as the wait the buckets ask for would end after the deadline.
        """
        while True:
            wait = await self.try_take(user_id)
            if wait == 0.0:
                return
            left = deadline - time.monotonic()
            if wait > left:
                raise RateLimited(
                    f"rate limited: the agent's rate limit asks to wait {wait:.2f} s, "
                    f"more than the {max(0.0, left):.2f} s left (user {user_id})",
                    wait=wait,
                )
            await asyncio.sleep(min(left, wait * (1 + JITTER * random.random())))

    async def acquire_for(self, request: AgentRequest, deadline: float) -> None:
        """:meth:`acquire` for a request's owner: the agents' ``before_retry`` hook.

        The call has already reached the provider, so a wait too long for it fails the
        attempt (a plain transient :class:`AgentError`) instead of deferring the run: deferred
        runs cost no attempt, and a run that failed at the provider must not retry for free.
        """
        try:
            await self.acquire(request.user_id, deadline)
        except RateLimited as exc:
            raise AgentError(exc.message) from None

    async def aclose(self) -> None:
        await self._redis.aclose(close_connection_pool=True)


class RateLimitedAgent:
    """An agent whose calls wait for the rate limiter first.

    One token per :meth:`complete` call, waited for at most ``max_wait`` seconds, else
    :class:`RateLimited` before the wrapped agent is called. An agent that makes several HTTP
    attempts per call (the OpenAI-compatible agent retries 429 and 5xx) should also be given
    :meth:`RateLimiter.acquire_for` for its retries, so that every request the provider sees is
    counted: :func:`~personal_assistant.agents.factory.build_agent` does that. Closing this
    agent closes the wrapped agent and the limiter.
    """

    def __init__(self, agent: Agent, limiter: RateLimiter, *, max_wait: float) -> None:
        self._agent = agent
        self._limiter = limiter
        self._max_wait = max_wait

    @property
    def name(self) -> str:
        return self._agent.name

    async def complete(self, request: AgentRequest) -> AgentReply:
        await self._limiter.acquire(request.user_id, time.monotonic() + self._max_wait)
        return await self._agent.complete(request)

    async def aclose(self) -> None:
        try:
            await self._agent.aclose()
        finally:
            await self._limiter.aclose()
