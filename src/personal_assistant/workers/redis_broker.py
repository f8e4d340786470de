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

Each item the channel pops is checked before kombu reads it (:func:`.inbound.check_envelope`):
an item that is not kombu's envelope made the worker exit or reconnect; it is now dropped and
logged without its content, and the channel goes on consuming.

The app's connections name this transport as Redis (:mod:`.broker_connection`).
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from redis.exceptions import ConnectionError as RedisConnectionError

from personal_assistant.errors import ValidationError
from personal_assistant.workers.inbound import check_envelope, refuse_item


class Channel(kombu_redis.Channel):
    # Set by kombu (not in the stubs mypy sees).
    connection_errors: tuple[type[BaseException], ...]
    _queue_cycle: Any

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

    def _brpop_read(self, **options: Any) -> bool:
        """kombu's ``_brpop_read`` (5.5 to 5.7), with the popped item checked before delivery.

        A refused item is gone from the queue (``BRPOP`` took it) and was never in the
        unacknowledged set: it is logged and reads as "no message" (``Empty``).
        """
        try:
            try:
                dest__item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # As kombu: disconnect, so that the next iteration reconnects.
                self.client.connection.disconnect()
                raise
            if not dest__item:
                raise Empty()
            dest, item = dest__item
            queue = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            raw = item if isinstance(item, bytes) else str(item).encode("utf-8", "replace")
            try:
                payload = check_envelope(raw)
            except ValidationError as error:
                refuse_item(queue, raw, error)
                raise Empty() from None
            self.connection._deliver(payload, queue)
            return True
        finally:
            self._in_poll = None
            flush = getattr(self, "_flush_brpop_reauth", None)  # kombu >= 5.7
            if flush is not None:
                flush()

    def close(self) -> None:
        if self._detached():
            self.do_restore = False  # the broker cannot be reached through this channel
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel
