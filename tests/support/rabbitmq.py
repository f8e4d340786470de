"""RabbitMQ for tests: a virtual host of the test's own on the machine's broker, and its queues.

The machine's RabbitMQ (``TEST_AMQP_HOST``:``TEST_AMQP_PORT``, 127.0.0.1:5672, guest/guest) is
shared: a test never touches what it did not create. :func:`vhost` makes a virtual host with
``rabbitmqctl``, gives ``guest`` every permission on it and deletes it, with every queue and
message in it, at the end. A test that needs RabbitMQ skips when it is absent, but fails when
``CI`` is set (``.ci/run`` installs and starts it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from kombu import Connection

from support import services

AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("TEST_AMQP_PORT", "5672"))


def available(host: str = AMQP_HOST, port: int = AMQP_PORT) -> bool:
    """Does RabbitMQ answer on ``host:port``, and can this machine run ``rabbitmqctl``?"""
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError:
        return False
    return shutil.which("rabbitmqctl") is not None


def require() -> None:
    """Skip the test when RabbitMQ is absent; fail it when ``CI`` is set."""
    services.require(available(), f"RabbitMQ ({AMQP_HOST}:{AMQP_PORT}, with rabbitmqctl)")


def rabbitmqctl(*args: str, node: str | None = None) -> str:
    """Run ``rabbitmqctl`` (on ``node``, else the machine's); its output."""
    where = ["-n", node] if node else []
    done = subprocess.run(
        ["rabbitmqctl", "-q", *where, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout


def url_for(vhost_name: str, host: str = AMQP_HOST, port: int = AMQP_PORT) -> str:
    return f"amqp://guest:guest@{host}:{port}/{quote(vhost_name, safe='')}"


@contextmanager
def vhost(prefix: str = "pa-test") -> Iterator[str]:
    """The broker URL of a new virtual host on the machine's RabbitMQ, deleted afterwards."""
    require()
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield url_for(name)
    finally:
        rabbitmqctl("delete_vhost", name)


def vhost_of(url: str) -> str:
    """The virtual host a broker URL names (``/`` when it names none)."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def queue_types(url: str, node: str | None = None) -> dict[str, str]:
    """Each queue of the URL's virtual host and its type (``classic``, ``quorum``)."""
    out = rabbitmqctl(
        "list_queues", "-p", vhost_of(url), "name", "type", "--no-table-headers", node=node
    )
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def depth(url: str, queue: str) -> int:
    """Messages ready in ``queue``, read as RabbitMQ allows: a passive declare (0: no queue)."""
    with Connection(url, connect_timeout=5) as conn, conn.channel() as channel:
        amqp_channel: Any = channel  # kombu's StdChannel type omits what AMQP channels have
        try:
            return int(amqp_channel.queue_declare(queue=queue, passive=True).message_count)
        except conn.channel_errors:
            return 0


def purge(url: str, queue: str) -> int:
    """Drop every ready message of ``queue`` (the virtual host's own); how many were dropped."""
    with Connection(url, connect_timeout=5) as conn, conn.channel() as channel:
        amqp_channel: Any = channel
        return int(amqp_channel.queue_purge(queue))


def server_version(url: str) -> str:
    """The RabbitMQ version the broker at ``url`` announces (``3.10.8``)."""
    with Connection(url, connect_timeout=5) as conn:
        conn.connect()
        properties: dict[str, Any] = conn.connection.server_properties
        return str(properties.get("version", "?"))
