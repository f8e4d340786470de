"""Requests per API key: a token bucket per key, in this server process.

The rule is pure (:func:`take`: a bucket and ``now`` in, the bucket after and a
:class:`Verdict` out): a key holds up to ``burst`` tokens, a request takes one, and tokens come
back at ``per_minute / 60`` a second. :class:`Limiter` keeps one bucket per key id (the key's
public prefix, never the key) in memory: each server process counts its own requests, so
``N`` processes behind one address allow ``N`` times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Bucket", "Limiter", "Verdict", "take"]

#: Past this many buckets, the full ones (keys idle long enough) are forgotten.
_MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Bucket:
    """The tokens a key holds, as of ``at`` (seconds of a monotonic clock)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class Verdict:
    """May the request go; the whole tokens left; when refused, the seconds until one is
    back (at least 1, for ``Retry-After``)."""

    allowed: bool
    remaining: int
    retry_after: int = 0


def take(
    bucket: Bucket | None, now: float, *, per_minute: int, burst: int
) -> tuple[Bucket, Verdict]:
    """One request against ``bucket`` (None: a key not seen yet, its bucket full)."""
    rate = per_minute / 60.0
    if bucket is None:
        tokens = float(burst)
    else:
        tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), Verdict(True, int(tokens - 1.0))
    wait = max(1, math.ceil((1.0 - tokens) / rate)) if rate > 0 else 60
    return Bucket(tokens, now), Verdict(False, 0, wait)


class Limiter:
    """One bucket per key id, in memory; ``per_minute`` 0: no limit."""

    def __init__(
        self, per_minute: int, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    def __repr__(self) -> str:
        return f"Limiter(per_minute={self.per_minute}, burst={self.burst})"

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def check(self, key_id: str) -> Verdict:
        """Take a token for ``key_id`` (a key's public id)."""
        if not self.enabled:
            return Verdict(True, self.burst)
        now = self._clock()
        if len(self._buckets) >= _MAX_BUCKETS:
            self._forget_full(now)
        bucket, verdict = take(
            self._buckets.get(key_id), now, per_minute=self.per_minute, burst=self.burst
        )
        self._buckets[key_id] = bucket
        return verdict

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have filled up again: forgetting one changes nothing."""
        refill = self.burst * 60.0 / self.per_minute
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < refill}
