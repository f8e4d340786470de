"""The app's broker connection: kombu's, back soon after the broker, and named as it serves.

**Tried again every 2 s at most.** A worker that loses the broker tries it again at once, then
after :data:`RETRY_START_S`, then every :data:`RETRY_MAX_S`, however long the broker is away.
Celery's consumer asks kombu for a connection without saying how often to try, and kombu's
defaults wait 2, 4, 6 ... up to 30 s between tries: a worker came back up to 30 s after Redis
did, and two workers of one deployment 12 s apart, the runs owed by then all taken by the first
(``tests/chaos/test_redis_faults.py``). A try costs one refused TCP connection. Celery stops
trying after ``broker_connection_max_retries``, which ``celery_app`` sets to "never": with tries
this close together its default of 100 would stop a worker after a 3-minute outage.

**Named as the Redis it serves.** On :class:`.redis_broker.Transport`, what kombu shows
(``as_uri()``, ``info()``: the worker's banner and ``stats``, Flower) names the transport
``redis``, or ``rediss`` over TLS, as for kombu's own Redis transport, instead of that class's
path: tools read the broker's kind from that scheme (Flower's broker page and its
``/api/queues/length`` answered 404). What builds connections from it (``clone()``, pickling,
and kombu's connection pools, whose connections are kombu's class and show the class path)
keeps the transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

import kombu

from personal_assistant.workers.redis_broker import Transport

#: Seconds before the second try of a lost broker (the first is at once).
RETRY_START_S = 1
#: Seconds added to the wait after each failed try.
RETRY_STEP_S = 1
#: The longest wait between two tries.
RETRY_MAX_S = 2


class Connection(kombu.Connection):
    """kombu's connection, with the retry cadence and the name described in the module."""

    def ensure_connection(
        self,
        errback: Callable[[Exception, float], None] | None = None,
        max_retries: int | None = None,
        interval_start: int = RETRY_START_S,
        interval_step: int = RETRY_STEP_S,
        interval_max: int = RETRY_MAX_S,
        callback: Callable[[], None] | None = None,
        reraise_as_library_errors: bool = True,
        timeout: int | None = None,
    ) -> Self:
        return super().ensure_connection(
            errback,
            max_retries,  # type: ignore[arg-type]  # None: forever, as kombu documents
            interval_start,
            interval_step,
            interval_max,
            callback,
            reraise_as_library_errors,
            timeout,
        )

    def info(self) -> dict[str, Any]:
        info = super().info()
        if issubclass(self.get_transport_cls(), Transport):
            info["transport"] = "rediss" if self.ssl else "redis"
        return info

    def __reduce__(self) -> tuple[Any, ...]:
        # kombu's own pickles ``info()``, the name shown; this one the transport in use.
        return self.__class__, tuple(super().info().values()), None
