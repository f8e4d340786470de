"""The embedded broker: kombu's SQLAlchemy transport on SQLite, polled every 0.25 s.

kombu's virtual transports poll; the default interval (1 s) would add up to a second to every
run's start on the embedded default, while 0.1 s costs an idle worker about 8 % of a core
(five queues, each polled every interval); 0.25 s costs about 3 %. The SQLAlchemy transport
hands its options to ``create_engine``, so the interval is set on the class instead.
"""

from __future__ import annotations

from kombu.transport import sqlalchemy

POLLING_INTERVAL_S = 0.25


class Transport(sqlalchemy.Transport):
    polling_interval = POLLING_INTERVAL_S
