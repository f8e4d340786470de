"""The worker's consumer: Celery's, surviving the loss of a Redis broker under load.

When the broker connection is lost, Celery (5.7) collects the lost connection, which detaches
its kombu transport, and then closes it once more. If the consuming channel's first close
failed part-way (a ``BRPOP`` was in flight on the dead socket), the second close goes on to
restore the channel's unacknowledged messages, which on a detached transport raises
``AttributeError`` from kombu's Redis channel instead of a connection error. Celery treats that
as unrecoverable and the worker exits: with late acks under load, any Redis restart could kill
a worker. ``tests/chaos/test_redis_faults.py`` showed it.

Restoring through a connection that is lost cannot work anyway, and nothing needs it: the
database re-dispatches every run still owed after ``DISPATCH_LEASE`` and the reaper re-sends
pending notifications, while Redis itself restores what it still holds after its visibility
timeout. So before Celery's clean-up, the lost connection's channels stop restoring.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer


class Consumer(CeleryConsumer):
    def on_connection_error_after_connected(self, exc: Exception) -> None:
        if self.connection is not None:
            forget_unacked(self.connection)
        super().on_connection_error_after_connected(exc)


def forget_unacked(connection: Any) -> None:
    """Stop the channels of a lost connection from restoring unacked messages on close."""
    transport = getattr(connection, "_transport", None)  # None: already collected
    for channel in getattr(transport, "channels", None) or ():
        channel.do_restore = False
