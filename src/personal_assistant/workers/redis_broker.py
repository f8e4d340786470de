"""The Redis broker: kombu's Redis transport, whose channels outlive their connection safely.

When a worker loses its Redis connection (Redis restarted, a network cut), Celery collects the
lost connection, which detaches its kombu transport (``transport.client = None``), and closes
its channels; a task that was running meanwhile finishes later and acknowledges its message on
its old, closed channel (``channel.connection = None``). kombu's Redis channel then builds a new
connection pool from the missing connection details and raises ``AttributeError``, which
Celery's consumer does not expect from a broker operation: it logs "Unrecoverable error" and
the worker exits. Under load with late acknowledgements, one Redis restart killed a worker
(``tests/chaos/test_redis_faults.py``). Two ways in were seen:

* Celery closes the collected connection a second time; when the first close of the consuming
  channel failed part-way (a ``BRPOP`` was in flight on the dead socket), the second one goes
  on to restore the channel's unacknowledged messages through the detached transport;
* a task finishing after the reconnect acknowledges its message on the closed channel.

Here a channel whose connection is gone raises a connection error instead, which Celery
handles as such ("Couldn't ack", or nothing while closing), and does not try to restore
unacknowledged messages it can no longer reach. Nothing is lost by that: the database
re-dispatches every run still owed after ``DISPATCH_LEASE`` (a second delivery claims nothing),
the reaper re-sends pending notifications, and Redis itself restores the messages it still holds
after its visibility timeout.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _detached(self) -> bool:
        transport = self.connection  # None once the channel is closed
        return transport is None or transport.client is None

    def _require_connection(self) -> None:
        if self._detached():
            raise RedisConnectionError("this channel's broker connection was closed")

    @property
    def pool(self) -> Any:
        self._require_connection()
        return super().pool

    @property
    def async_pool(self) -> Any:
        self._require_connection()
        return super().async_pool

    def close(self) -> None:
        if self._detached():
            self.do_restore = False  # the broker cannot be reached through this channel
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel
