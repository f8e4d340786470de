"""A bare Dramatiq app with one no-op actor: the Dramatiq peer of the end-to-end figure.

The workers run it with ``dramatiq benchmarks.dramatiq_app:setup -p 2 -t 8``: the CLI calls
:func:`setup` in each worker process, which builds a ``RedisBroker`` (Dramatiq's default
middleware, no result backend) on ``$REDIS_URL`` under the namespace ``$REDIS_KEY_PREFIX``
``dramatiq``, so every key it writes lies under the benchmark's own prefix. Nothing happens at
import.

What is processed when is timed by :class:`DrainClock`, a middleware that costs each message
a clock read and a counter step in the worker process (no Redis command): each process keeps
its count and the times its first and last message finished, and writes them to one Redis hash
when it shuts down.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "default"
CLOCK_KEY = "drain-clock"  # under the namespace: one field per worker process


class DrainClock(dramatiq.Middleware):
    """Counts the messages a worker process finished and when the first and last one did."""

    def __init__(self) -> None:
        self._counter = itertools.count()  # next() is atomic under the GIL
        self.first = 0.0
        self.last = 0.0
        self.failed = 0

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        now = time.time()
        if next(self._counter) == 0:
            self.first = now
        if now > self.last:
            self.last = now
        if exception is not None:
            self.failed += 1

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        assert isinstance(broker, RedisBroker)
        count = next(self._counter)
        stamp = {"count": count, "first": self.first, "last": self.last, "failed": self.failed}
        broker.client.hset(f"{broker.namespace}:{CLOCK_KEY}", str(os.getpid()), json.dumps(stamp))


def noop() -> None:
    """Does nothing: what is measured is Dramatiq's own cost per message."""


def setup(url: str | None = None, prefix: str | None = None) -> dramatiq.Actor[[], None]:
    """Build the broker (set as Dramatiq's global one) and declare the no-op actor on it.

    ``url`` and ``prefix`` default to ``$REDIS_URL`` and ``$REDIS_KEY_PREFIX`` (the workers'
    environment); the prefix must be a benchmark's own (``bench_...:``).
    """
    url = url or os.environ["REDIS_URL"]
    prefix = prefix or os.environ["REDIS_KEY_PREFIX"]
    assert prefix.startswith("bench_") and prefix.endswith(":"), prefix
    # RedisBroker.__init__ has no annotations (dramatiq 2.2).
    broker = RedisBroker(url=url, namespace=f"{prefix}dramatiq")  # type: ignore[no-untyped-call]
    broker.add_middleware(DrainClock())
    dramatiq.set_broker(broker)
    return dramatiq.actor(queue_name=QUEUE, broker=broker)(noop)


def enqueue(actor: dramatiq.Actor[[], None], count: int) -> None:
    """Enqueue ``count`` no-op messages, one ``broker.enqueue`` each (Dramatiq has no batch)."""
    broker = actor.broker
    for _ in range(count):
        broker.enqueue(actor.message())


def unacked(actor: dramatiq.Actor[[], None]) -> int:
    """Messages enqueued and not yet acknowledged (the queue's ``.msgs`` hash)."""
    broker = actor.broker
    assert isinstance(broker, RedisBroker)
    return int(broker.client.hlen(f"{broker.namespace}:{QUEUE}.msgs"))


def clock(actor: dramatiq.Actor[[], None]) -> list[dict[str, float]]:
    """What each worker process wrote at shutdown (see :class:`DrainClock`)."""
    broker = actor.broker
    assert isinstance(broker, RedisBroker)
    raw = broker.client.hvals(f"{broker.namespace}:{CLOCK_KEY}")
    return [json.loads(value) for value in raw]
