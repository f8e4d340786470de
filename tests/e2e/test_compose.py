"""The Compose files, ``docker/docker-compose.{dev,stage,prod}.yml``, checked three ways.

1. ``docker compose config -q`` (or Debian's ``docker-compose``, v1) accepts each file, with
   the secret files it names made by the test. Skipped when neither tool is installed, failed
   when ``CI`` is set (``.ci/run`` installs one). The tool also resolves each service's command,
   environment and healthcheck exactly as this file's loader does, so part 3 runs what
   Compose would run.
2. From the YAML: every long-running service has a healthcheck, the worker services' ``-Q``
   lists together consume the five queues, Redis never evicts and keeps an append-only file,
   RabbitMQ is an optional profile, ``doctor`` is a one-shot that waits for a healthy stack,
   and staging runs production's services.
3. No Docker engine runs on these machines, so each ``pa`` service runs as a process, with the
   environment its file gives it translated to the local services: a fresh PostgreSQL
   database, Redis at 127.0.0.1:6379 under a key prefix of the test's own, the secrets as
   files. ``migrate`` upgrades the empty database, the workers become ready and consume
   exactly their queues, the scheduler ticks, every healthcheck command exits 0, and the
   one-shot ``doctor`` passes. One stack per file (dev, prod), shared by the module's tests;
   staging's services are production's (checked in 2), so prod's run covers them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from personal_assistant.database import migrate
from personal_assistant.workers.routing import QUEUES, ROUTES
from personal_assistant.workers.task_names import TaskName
from support.cli import PA
from support.hook_server import free_port
from support.keys import CHANNEL_KEY
from support.processes import wait_until
from support.services import (
    REDIS_URL,
    create_database_from_template,
    delete_redis_prefix,
    drop_database,
    pg_available,
    redis_available,
)
from support.stack import Db, client_app, settings_for

pytestmark = pytest.mark.e2e

DOCKER = Path(__file__).parents[2] / "docker"
FILES = ("dev", "stage", "prod")
#: Services that run once and exit; every other service must say how healthy it is.
ONE_SHOTS = frozenset({"migrate", "doctor"})
#: What the contract (shared/CONTRACT.md) names in each file.
CONTRACT_SERVICES = {"dev": {"worker", "scheduler"}, "prod": {"ai_worker", "scheduler"}}
#: One harmless task per queue (with its arguments), sent to prove the right pool consumes it.
#: Not ``process_due_ai_tasks``: a scheduler step run by a worker would claim the seeded task
#: before the scheduler does.
PROBES: dict[str, tuple[str, list[Any]]] = {
    "ai_tasks": (TaskName.EXECUTE_AI_TASK, [[]]),
    "email_tasks": (TaskName.SEND_DAILY_DIGESTS, []),
    "file_tasks": (TaskName.CLEANUP_EXPORTS, []),
    "sync_tasks": (TaskName.SYNC_CALENDARS, []),
    "maintenance_tasks": (TaskName.REAP_EXPIRED_RUNS, []),
}
#: The seeded one-shot task is due this long after it is created: the stack starts meanwhile.
SEED_DUE = "5s"
#: The values the test's secret files hold (by file name); the database's is added per stack.
LOCAL_SECRETS = {
    "redis_url": REDIS_URL,
    "rabbitmq_url": "amqp://guest:guest@127.0.0.1:5672//",
    "agent_api_key": "unused",
    "channel_keys": CHANNEL_KEY,
    "redis_password": "unused",
    "rabbitmq_password": "unused",
}
HOST = socket.gethostname()
BIN = Path(sys.executable).parent  # pa and celery, as on the image's PATH
READY_S = 60.0


# The files as Compose reads them ------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_]\w*)")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME-default}`` in every string;
    ``$$`` (a literal ``$``) stays escaped, as ``config`` prints it."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$$"
        name = match.group(1) or match.group(4)
        if match.group(2) == ":-":
            return env.get(name) or match.group(3)
        if match.group(2) == "-":
            return env.get(name, match.group(3))
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def unescape(text: str) -> str:
    """What a container sees of a string Compose has interpolated."""
    return text.replace("$$", "$")


def load(name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Compose file, anchors merged and variables at their defaults (or from ``env``)."""
    data = yaml.safe_load((DOCKER / f"docker-compose.{name}.yml").read_text())
    return dict(interpolate(data, env or {}))


def services(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(data["services"])


def is_app(spec: Mapping[str, Any]) -> bool:
    """Built from docker/Dockerfile: its entrypoint is ``pa``."""
    return "build" in spec


def argv(spec: Mapping[str, Any]) -> list[str]:
    command = spec["command"]
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    return [unescape(word) for word in words]


def option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words[:-1]):
        if word in names:
            return words[i + 1]
    return None


def worker_queues(spec: Mapping[str, Any]) -> set[str] | None:
    """The queues a ``pa worker`` service consumes (all five without ``-Q``); None: no worker."""
    if not is_app(spec) or argv(spec)[0] != "worker":
        return None
    listed = option(argv(spec), "-Q", "--queues")
    return set(listed.split(",")) if listed else set(QUEUES)


def node_name(spec: Mapping[str, Any]) -> str:
    """The worker's Celery node name on this machine (``-n``, ``%h``: the host name)."""
    return (option(argv(spec), "-n", "--hostname") or "celery@%h").replace("%h", HOST)


def joined(command: Any) -> str:
    return " ".join(command) if isinstance(command, list) else str(command)


# 1. Compose itself ---------------------------------------------------------------------------


def compose_tool() -> list[str] | None:
    """``docker compose`` (v2) if the plugin answers, else ``docker-compose``; None: neither."""
    docker = shutil.which("docker")
    if docker:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
        if plugin.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def tool() -> list[str]:
    found = compose_tool()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("neither `docker compose` nor `docker-compose` is installed, and CI is set")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    return found


def write_secrets(directory: Path, values: Mapping[str, str]) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, value in values.items():
        path = directory / name
        path.write_text(value + "\n")
        path.chmod(0o600)
    return directory


def run_tool(tool: list[str], name: str, tmp_path: Path, *args: str) -> str:
    """``<tool> -f <file> --profile ... <args>``, every profile on, with the test's secrets and
    no ``.env`` file or variables of the developer's (HOME stays: Docker's plugins live there)."""
    secrets = write_secrets(
        tmp_path / "secrets", {**LOCAL_SECRETS, "database_url": "postgresql://pa@db/pa"}
    )
    (tmp_path / "empty.env").write_text("")
    profiles = sorted(
        {p for spec in services(load(name)).values() for p in spec.get("profiles", ())}
    )
    done = subprocess.run(
        [
            *tool,
            "-f",
            str(DOCKER / f"docker-compose.{name}.yml"),
            "--env-file",
            str(tmp_path / "empty.env"),
            *[arg for profile in profiles for arg in ("--profile", profile)],
            *args,
        ],
        env={
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_CONFIG")},
            "PA_SECRETS_DIR": str(secrets),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("name", FILES)
def test_compose_accepts_the_file(tool: list[str], name: str, tmp_path: Path) -> None:
    assert run_tool(tool, name, tmp_path, "config", "-q") == ""


def resolved_parts(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A service's command, environment and healthcheck, ``$$`` read as ``$`` (Compose v1
    prints it escaped)."""
    return {
        "command": [unescape(str(w)) for w in spec.get("command", [])],
        "environment": {k: unescape(str(v)) for k, v in spec.get("environment", {}).items()},
        "healthcheck": [unescape(str(w)) for w in spec.get("healthcheck", {}).get("test", [])],
    }


@pytest.mark.parametrize("name", FILES)
def test_compose_resolves_what_the_live_test_runs(
    tool: list[str], name: str, tmp_path: Path
) -> None:
    resolved = services(yaml.safe_load(run_tool(tool, name, tmp_path, "config")))
    ours = services(load(name))
    assert set(resolved) == set(ours)
    for service, spec in ours.items():
        assert resolved_parts(resolved[service]) == resolved_parts(spec), service


# 2. The YAML ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    for service, spec in services(load(name)).items():
        if service in ONE_SHOTS:
            assert "healthcheck" not in spec, service
            assert spec.get("restart", "no") == "no", f"{service} runs once"
        else:
            assert spec.get("healthcheck", {}).get("test"), f"{name}: {service} has no healthcheck"


@pytest.mark.parametrize("name", FILES)
def test_worker_services_consume_the_five_queues(name: str) -> None:
    consumed = [q for spec in services(load(name)).values() for q in worker_queues(spec) or ()]
    assert set(consumed) == set(QUEUES)
    assert set(ROUTES.values()) <= set(consumed)


@pytest.mark.parametrize("name", FILES)
def test_the_contract_services_are_there(name: str) -> None:
    names = set(services(load(name)))
    assert CONTRACT_SERVICES.get(name, set()) <= names
    if name != "dev":
        assert worker_queues(services(load(name))["ai_worker"]) == {"ai_tasks"}


@pytest.mark.parametrize("name", ["stage", "prod"])
def test_one_worker_pool_per_queue_family(name: str) -> None:
    pools = [q for spec in services(load(name)).values() if (q := worker_queues(spec))]
    assert len(pools) >= 4
    every = [queue for pool in pools for queue in pool]
    assert len(every) == len(set(every)), "each queue has exactly one pool"


@pytest.mark.parametrize("name", FILES)
def test_redis_never_evicts_and_keeps_an_append_only_file(name: str) -> None:
    command = joined(services(load(name))["redis"]["command"])
    assert re.search(r"--maxmemory-policy\s+noeviction\b", command)
    assert re.search(r"--appendonly\s+yes\b", command)


@pytest.mark.parametrize("name", ["stage", "prod"])
def test_rabbitmq_is_an_optional_profile_that_switches_the_broker(name: str) -> None:
    data = load(name)
    rabbitmq = services(data)["rabbitmq"]
    assert rabbitmq.get("profiles") == ["rabbitmq"]
    assert rabbitmq["healthcheck"]["test"]
    for service, spec in services(data).items():
        assert "rabbitmq" not in spec.get("depends_on", {}), f"{service} needs the profile"
    assert data["secrets"]["broker_url"]["file"].endswith("/redis_url")
    chosen = load(name, {"PA_BROKER": "rabbitmq"})
    assert chosen["secrets"]["broker_url"]["file"].endswith("/rabbitmq_url")


@pytest.mark.parametrize("name", FILES)
def test_doctor_runs_once_after_the_stack_is_healthy(name: str) -> None:
    all_services = services(load(name))
    doctor = all_services["doctor"]
    assert argv(doctor)[:2] == ["doctor", "--canary"]
    assert doctor["restart"] == "no"
    assert doctor.get("profiles") == ["doctor"]  # `up` alone does not run it
    waits_for = {s for s, c in doctor["depends_on"].items() if c["condition"] == "service_healthy"}
    long_running_apps = {
        s for s, spec in all_services.items() if is_app(spec) and s not in ONE_SHOTS
    }
    assert waits_for == long_running_apps


def test_staging_runs_production_services() -> None:
    stage, prod = services(load("stage")), services(load("prod"))
    assert set(stage) == set(prod)
    for service in prod:
        ours = {k: v for k, v in stage[service].items() if k != "deploy"}
        assert ours == {k: v for k, v in prod[service].items() if k != "deploy"}, service


# 3. The commands, run as processes -------------------------------------------------------------


def _require_services() -> None:
    if pg_available() and redis_available():
        return
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL and Redis must be reachable when CI is set")
    pytest.skip("PostgreSQL or Redis is not reachable")


@dataclass
class Stack:
    """One Compose file's ``pa`` services as local processes, in directories of their own."""

    name: str
    data: dict[str, Any]
    root: Path
    database_url: str
    prefix: str
    db: Db
    migrate: subprocess.CompletedProcess[str] | None = None
    seeded_task: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return services(self.data)

    @property
    def long_running(self) -> list[str]:
        return [s for s, spec in self.services.items() if is_app(spec) and s not in ONE_SHOTS]

    @property
    def workers(self) -> dict[str, dict[str, Any]]:
        return {s: spec for s, spec in self.services.items() if worker_queues(spec) is not None}

    def home(self, service: str) -> Path:
        """The service's ``/data`` (the image's ``PA_HOME``) and working directory."""
        path = self.root / service
        path.mkdir(exist_ok=True)
        return path

    def env(self, service: str) -> dict[str, str]:
        """The environment the file gives ``service``, pointed at the local services."""
        spec = self.services[service]
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.home(service)),
            "PA_HOME": str(self.home(service)),
            "REDIS_KEY_PREFIX": self.prefix,  # this test's keys only
            "HOSTNAME": HOST,
        }
        for key, value in spec.get("environment", {}).items():
            env[key] = self._local(spec, str(value))
        return env

    def _local(self, spec: Mapping[str, Any], value: str) -> str:
        if value.startswith("/run/secrets/"):
            secret = value.removeprefix("/run/secrets/")
            assert secret in spec.get("secrets", []), f"{secret} is not mounted"
            return str(self.root / "secrets" / Path(self.data["secrets"][secret]["file"]).name)
        parts = urlsplit(value)
        if parts.hostname in self.services:  # a URL to a service of the file
            if parts.scheme.startswith("postgres"):
                return self.database_url
            if parts.scheme.startswith("redis"):
                return REDIS_URL
        return unescape(value)

    @property
    def scheduler(self) -> str:
        return next(s for s in self.long_running if argv(self.services[s])[0] == "beat")

    def run(
        self, service: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """The service's command, or ``pa ARGS`` in its environment (``docker-compose run``)."""
        return subprocess.run(
            [*PA, *(args or argv(self.services[service]))],
            cwd=self.home(service),
            env=self.env(service),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def seed(self) -> int:
        """A user and a one-shot task due in :data:`SEED_DUE`: the scheduler's first work."""
        for args in (("user", "add", "Compose"), ("task", "add", "Compose", "--in", SEED_DUE)):
            done = self.run(self.scheduler, *args, "--json", timeout=60)
            assert done.returncode == 0, done.stderr
        return int(json.loads(done.stdout)["id"])

    def start(self, service: str) -> None:
        with (self.root / f"{service}.log").open("ab") as out:
            self.procs[service] = subprocess.Popen(
                [*PA, *argv(self.services[service])],
                cwd=self.home(service),
                env=self.env(service),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log(self, service: str) -> str:
        path = self.root / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, service: str) -> bool:
        assert self.procs[service].poll() is None, f"{service} exited:\n{self.log(service)}"
        return True

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The file's ``pa`` services running: ``migrate`` done, a task seeded, every worker ready,
    the scheduler started; stopped and their database and Redis keys removed afterwards."""
    _require_services()
    name = str(request.param)
    database = f"pa_compose_{uuid.uuid4().hex[:10]}"
    url = create_database_from_template(database, "template0")  # empty: migrate's to fill
    root = tmp_path_factory.mktemp(f"compose-{name}")
    write_secrets(root / "secrets", {**LOCAL_SECRETS, "database_url": url})
    # Every service on this one machine: the processes' /metrics off (they would share one
    # port), the exporter on a free one.
    ports = {"METRICS_PORT": "0", "EXPORTER_PORT": str(free_port())}
    built = Stack(name, load(name, ports), root, url, f"pa-test-{uuid.uuid4().hex[:12]}:", Db(url))
    try:
        built.migrate = built.run("migrate")
        if built.migrate.returncode != 0:
            pytest.fail(
                f"{name}: migrate exited {built.migrate.returncode}: {built.migrate.stderr}"
            )
        built.seeded_task = built.seed()
        for service in sorted(built.long_running, key=lambda s: s not in built.workers):
            built.start(service)  # the workers first: the scheduler depends on them
        for service, spec in built.workers.items():
            node = node_name(spec)
            wait_until(
                lambda s=service, n=node: built.alive(s) and f"{n} ready." in built.log(s),
                timeout=READY_S,
                message=f"{service} ({node}) to be ready",
            )
        yield built
    finally:
        built.stop()
        built.db.close()
        drop_database(database)
        delete_redis_prefix(built.prefix)


def test_migrate_upgrades_an_empty_database(stack: Stack) -> None:
    assert stack.migrate is not None
    assert stack.migrate.returncode == 0, stack.migrate.stderr
    assert stack.db.scalar("SELECT version_num FROM alembic_version") == migrate.HEAD


def test_workers_consume_exactly_the_queues_they_are_given(stack: Stack) -> None:
    app = client_app(settings_for({"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": stack.prefix}))
    try:
        nodes = {node_name(spec): service for service, spec in stack.workers.items()}
        answers = app.control.inspect(destination=list(nodes), timeout=10).active_queues() or {}
        assert {nodes[node]: {q["name"] for q in queues} for node, queues in answers.items()} == {
            service: worker_queues(spec) for service, spec in stack.workers.items()
        }

        sent = {queue: app.send_task(task, args).id for queue, (task, args) in PROBES.items()}
        for queue, task_id in sent.items():
            assert ROUTES[PROBES[queue][0]] == queue
            expected = {
                s for s, spec in stack.workers.items() if queue in (worker_queues(spec) or ())
            }
            wait_until(
                lambda t=task_id: any(f"[{t}] succeeded" in stack.log(s) for s in stack.workers),
                timeout=30,
                message=f"the {queue} probe to run",
            )
            ran = {s for s in stack.workers if f"[{task_id}] succeeded" in stack.log(s)}
            assert ran == expected, queue
    finally:
        app.close()


def test_the_scheduler_ticks_and_a_due_task_runs(stack: Stack) -> None:
    """The scheduler claims the seeded task when it falls due, and a worker runs it."""
    wait_until(
        lambda: (
            stack.alive(stack.scheduler)
            and stack.db.scalar(
                "SELECT count(*) FROM task_runs WHERE task_id = :t AND state = 'succeeded'",
                t=stack.seeded_task,
            )
            == 1
        ),
        timeout=60,
        message="the scheduler to fire the seeded task and a worker to run it",
    )
    assert "event=tasks_claimed" in stack.log(stack.scheduler)


def healthcheck(stack: Stack, service: str) -> subprocess.Popen[str]:
    """The service's healthcheck command, started as Docker runs it in the container."""
    test = [unescape(str(w)) for w in stack.services[service]["healthcheck"]["test"]]
    kind, rest = test[0], test[1:]
    assert kind in ("CMD", "CMD-SHELL"), test
    return subprocess.Popen(
        ["/bin/sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest,
        cwd=stack.home(service),
        env=stack.env(service),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_every_healthcheck_passes_on_the_running_stack(stack: Stack) -> None:
    """Each long-running service turns healthy: as for Docker, its check exits 0 within its
    ``retries`` consecutive attempts (all services' checks run at once)."""
    pending = {service: healthcheck(stack, service) for service in stack.long_running}
    tries = {service: 1 for service in pending}
    failures: dict[str, list[tuple[int, str]]] = {service: [] for service in pending}
    while pending:
        service, proc = next(iter(pending.items()))
        output, _ = proc.communicate(timeout=120)
        del pending[service]
        if proc.returncode == 0:
            failures.pop(service)
            continue
        failures[service].append((proc.returncode, output))
        if tries[service] < int(stack.services[service]["healthcheck"].get("retries", 3)):
            tries[service] += 1
            pending[service] = healthcheck(stack, service)
    assert failures == {}


def test_doctor_one_shot_passes_on_the_running_stack(stack: Stack) -> None:
    """``pa doctor --canary``, as the ``doctor`` service runs it: exit 0, everything passed."""
    done = stack.run("doctor", timeout=180)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
