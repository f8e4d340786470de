"""Does the broker answer? One round trip without Celery: what ``pa status`` asks.

``pa status`` must answer at once, and Celery's import alone took longer than the whole
command may (doctor reads everything else about the broker: :mod:`.broker_facts`). Redis is
asked ``PING`` with redis-py; RabbitMQ opens an AMQP connection with kombu; the embedded broker
is an SQLite file, which answers when it opens (a missing one is made by the first process
that uses it).
"""

from __future__ import annotations

from personal_assistant.config import AMQP_SCHEMES, Settings
from personal_assistant.database.plain import open_sqlite, sqlite_path
from personal_assistant.redaction import one_line

#: How long one broker operation may take.
TIMEOUT_S = 3


def broker_kind(settings: Settings) -> str:
    """``"redis"``, ``"amqp"`` or ``"embedded"``."""
    if settings.broker_is_redis:
        return "redis"
    if settings.broker_url.partition(":")[0].lower() in AMQP_SCHEMES:
        return "amqp"
    return "embedded"


def broker_error(settings: Settings) -> str | None:
    """None when the broker answers; else why not, on one line with its secrets masked."""
    kind = broker_kind(settings)
    try:
        if kind == "redis":
            _ping_redis(settings.broker_url)
        elif kind == "amqp":
            _open_amqp(settings.broker_url)
        else:
            _open_sqlite(settings.broker_url.removeprefix("sqla+"))
    except Exception as exc:  # every way a broker can be away or refuse us
        return one_line(exc)
    return None


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()


def _open_amqp(url: str) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT_S)


def _open_sqlite(url: str) -> None:
    path = sqlite_path(url)
    if path is None or not path.exists():
        if path is not None and not path.parent.is_dir():
            raise FileNotFoundError(f"no directory {path.parent} for the broker's file")
        return
    connection = open_sqlite(path)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchall()  # reads the header
    finally:
        connection.close()
