"""Choose the agent from settings, behind the rate limiter when limits are set."""

from __future__ import annotations

import math

from personal_assistant.agents.base import Agent
from personal_assistant.agents.offline import OfflineAgent
from personal_assistant.agents.openai_compat import OpenAICompatibleAgent
from personal_assistant.agents.ratelimit import (
    HOLD_SECONDS,
    Limit,
    RateLimitedAgent,
    RateLimiter,
)
from personal_assistant.config import Settings


def build_agent(settings: Settings) -> Agent:
    """The configured agent. With ``AGENT_RATE_PER_SECOND`` or ``AGENT_USER_RATE_PER_SECOND``
    set, every HTTP attempt to the provider (retries included) first takes a token from the
    Redis buckets; a run waits for one in its worker slot at most ``HOLD_SECONDS`` (and half
    its ``RUN_TIMEOUT``). Told to wait longer before its first request, it gives the slot back
    and goes back to the queue for the time it was told, with no attempt counted: another
    user's run, which its own bucket lets through, is not kept waiting behind throttled ones.
    Between the retries of one call, it fails transiently ("rate limited: ...")."""
    limiter = build_limiter(settings)
    agent: Agent
    if settings.agent == "openai":
        assert settings.agent_base_url is not None  # checked by Settings
        agent = OpenAICompatibleAgent(
            settings.agent_base_url,
            settings.agent_model,
            api_key=settings.agent_api_key,
            timeout=settings.agent_timeout_seconds,
            budget=settings.run_timeout_seconds,
            max_tokens=settings.agent_max_tokens,
            temperature=settings.agent_temperature,
            max_attempts=settings.agent_max_attempts,
            max_connections=settings.max_in_flight,
            before_retry=limiter.acquire_for if limiter is not None else None,
        )
    else:
        agent = OfflineAgent()
    if limiter is None:
        return agent
    hold = min(HOLD_SECONDS, settings.run_timeout_seconds / 2)
    return RateLimitedAgent(agent, limiter, max_wait=hold)


def build_limiter(settings: Settings) -> RateLimiter | None:
    """The shared rate limiter, or None when no limit is set (Settings checked ``REDIS_URL``)."""
    global_limit = _limit(settings.agent_rate_per_second, settings.agent_burst)
    user_limit = _limit(settings.agent_user_rate_per_second, settings.agent_user_burst)
    if global_limit is None and user_limit is None:
        return None
    assert settings.redis_url_raw is not None  # checked by Settings
    return RateLimiter.from_url(
        settings.redis_url_raw.get_secret_value(),
        prefix=settings.redis_key_prefix,
        global_limit=global_limit,
        user_limit=user_limit,
    )


def _limit(rate: float | None, burst: int | None) -> Limit | None:
    """A burst left unset is one second's worth of tokens (at least one)."""
    if rate is None:
        return None
    return Limit(rate, burst if burst is not None else max(1, math.ceil(rate)))
