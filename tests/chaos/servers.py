"""Throw-away Redis, PostgreSQL and RabbitMQ servers that a chaos scenario may kill and restart.

They run on free loopback ports with their data in a temporary folder, so faults injected into
them never reach the machine's own services or other tests. PostgreSQL refuses to run as root:
when the tests run as root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` user
(``runuser``), in a folder that user owns; RabbitMQ runs as the ``rabbitmq`` user likewise.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import amqp
import psycopg
import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {timeout} s")


class RedisServer:
    """``redis-server`` on a free port, keeping nothing on disk: a restart starts it empty.
    ``options`` are more of its command line (``--maxmemory-policy allkeys-lru``)."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        _wait(self.ping, 15, f"redis-server on port {self.port} answering")

    def ping(self) -> bool:
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: every queued message and result is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a network partition)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.kill()


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A PostgreSQL cluster of its own (``initdb``) on a free port, started with ``pg_ctl``.

    Its folder is a new one directly under the system's temporary directory: the ``postgres``
    user must be able to reach it, which a test's private ``tmp_path`` does not allow.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="pa-chaos-pg-"))
        self.data = self.workdir / "data"
        self.bin = _pg_bin()
        self._as_postgres = os.geteuid() == 0

    @staticmethod
    def available() -> bool:
        return _pg_bin() is not None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        command = [*argv]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def init(self) -> None:
        assert self.bin is not None
        if self._as_postgres:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        assert self.bin is not None
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.workdir / "postgres.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        _wait(self.ping, 30, f"PostgreSQL on port {self.port} answering")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects every client and shuts down; ``immediate`` is a crash."""
        assert self.bin is not None
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def ping(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=1) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]  # generated name
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        self.init()
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


#: Where Debian's package puts the server script (``/usr/sbin/rabbitmq-server`` wraps it).
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def _rabbitmq_server() -> str | None:
    if os.path.exists(RABBITMQ_SERVER):
        return RABBITMQ_SERVER
    return shutil.which("rabbitmq-server")


class RabbitMQServer:
    """A RabbitMQ node of its own (``rabbitmq-server``) on free loopback ports.

    Nothing is shared with the machine's node (``rabbit@localhost``, 5672) but the Erlang port
    mapper: its own node name, AMQP and distribution ports, data and log folders, and its own
    configuration, environment and enabled-plugins files (the machine's may pin the listener to
    5672 or start the management plugin on 15672). Killed and started again on the same folder,
    it keeps its durable queues and the persistent messages it had written, as a real node does.
    Its ``/`` virtual host and ``guest`` user (loopback only) are the scenario's alone.

    When the tests run as root it runs as the ``rabbitmq`` user (``runuser``), whose home holds
    the Erlang cookie; its folder is a new one under the system's temporary directory.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.node = f"pa-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.workdir = Path(tempfile.mkdtemp(prefix="pa-chaos-rabbitmq-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_rabbitmq = os.geteuid() == 0

    @staticmethod
    def available() -> bool:
        return _rabbitmq_server() is not None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _files(self) -> dict[str, str]:
        """The node's own configuration files, and the environment naming them."""
        config = self.workdir / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        plugins = self.workdir / "enabled_plugins"
        plugins.write_text("[].\n")
        env_file = self.workdir / "rabbitmq-env.conf"
        env_file.touch()
        return {
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.workdir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONF_ENV_FILE": str(env_file),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_PID_FILE": str(self.workdir / "node.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = 90) -> None:
        server = _rabbitmq_server()
        assert server is not None
        env = {**os.environ, **self._files()}
        command = [server]
        if self._as_rabbitmq:
            for path in self.workdir.rglob("*"):
                shutil.chown(path, "rabbitmq", "rabbitmq")
            shutil.chown(self.workdir, "rabbitmq", "rabbitmq")
            command = ["runuser", "-u", "rabbitmq", "--", server]
        with (self.workdir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
            )
        _wait(self.ping, timeout, f"RabbitMQ node {self.node} answering on port {self.port}")

    def ping(self) -> bool:
        """Does the node accept an AMQP connection (it has finished booting)?"""
        if self.proc is None or self.proc.poll() is not None:
            log = (self.workdir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"RabbitMQ node {self.node} exited:\n{log}")
        conn = amqp.Connection(
            f"127.0.0.1:{self.port}", userid="guest", password="guest", connect_timeout=1
        )
        try:
            conn.connect()
            return True
        except (OSError, amqp.exceptions.AMQPError):
            return False
        finally:
            with contextlib.suppress(OSError, amqp.exceptions.AMQPError):
                conn.collect()

    def kill(self) -> None:
        """SIGKILL to the node and its helpers: what it had not written to disk is gone."""
        if self.proc is None:
            return
        group = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=10)
        _wait(lambda: not _group_members(group), 30, f"RabbitMQ node {self.node} gone")
        self.proc = None

    def __enter__(self) -> RabbitMQServer:
        try:
            self.start()
        except BaseException:  # a node that did not answer in time is not left running
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _live_processes(field: int, value: int) -> list[int]:
    """The live processes whose ``/proc/<pid>/stat`` field ``field`` (after the command name:
    1 the parent, 2 the process group) is ``value``, sorted."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[field]) == value and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def _group_members(group: int) -> list[int]:
    """The live processes of process group ``group``."""
    return _live_processes(2, group)


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    return _live_processes(1, pid)
