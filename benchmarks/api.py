"""The HTTP API's throughput and latency, side by side with the same operations called in
process through the Python API (the façade the routes call).

One user owns 10,000 tasks (bulk-loaded). ``pa serve`` runs as a separate process, as a user
starts it; the benchmark process is the client (httpx, keep-alive). Each operation is measured
with one client calling in sequence and with ``CLIENTS`` clients at once, over HTTP and then
in process (``Assistant.tasks.list_tasks``, ``create_task``, ``preview_schedule``).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.fixtures import (
    Service,
    database,
    load_tasks,
    log,
    make_settings,
    process_env,
    register,
    scalar,
    stop,
    token,
    utc_seconds,
    vacuum,
    wait_until,
)
from benchmarks.report import Figure, Row
from personal_assistant.app.assistant import Assistant
from personal_assistant.clock import utcnow
from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine

KEY = "api"
TITLE = "HTTP API and Python API"
TASKS = 10_000
PAGE = 100
CLIENTS = 8
WARM_UP = 20
PA = Path(sys.executable).with_name("pa")
DAILY = {"kind": "daily", "times": ["09:00"]}
WEEKLY = {"kind": "weekly", "weekdays": ["mon", "wed", "fri"], "times": ["08:00", "18:30"]}

METHOD = """\
**What it means.** What one `pa serve` process answers, per second and how fast, for the
everyday calls of a client: a page of {page} tasks (the first, and one deep in the list, whose
cursor must not make it slower), creating a task, and a schedule preview; and what the same
operation costs through the Python API in process (`Assistant.tasks`: no HTTP, no key
check, no JSON), so the difference is the HTTP layer's cost.

**How it was measured.** One user owns {tasks:,} tasks (bulk-loaded, vacuumed). `pa serve`
(uvicorn, one process, its access log to a file) runs as a separate process, with no rate
limit and no task quota (`API_RATE_LIMIT_PER_MINUTE=0`, `MAX_ACTIVE_TASKS_PER_USER=0`, in
process too); the benchmark process is the client: `httpx.AsyncClient` with keep-alive and
the user's API key. Each operation gets
{warm} unmeasured calls, then {sequential} calls from 1 client one after another, then
{concurrent} calls from {clients} clients at once (each client calling in sequence). Then the
same in process: `Assistant` on a pooled engine, the same calls awaited one after another,
then {clients} coroutines at once. Requests/s is calls over the wall time of the phase;
latency is per call. The deep page is `cursor` = the id of task {deep:,} (the last page); the
first page is taken with no cursor. Task creations come last, so that the pages are measured
on exactly {tasks:,} tasks. The machine has 2 cores, shared by the server, PostgreSQL and the
client, which takes a good part of one core itself at these rates.

{table}
"""


@dataclass(frozen=True)
class Sample:
    calls: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


Call = Callable[[int], Awaitable[object]]


async def _run(call: Call, total: int, clients: int) -> Sample:
    """``total`` calls from ``clients`` callers at once, each calling in sequence."""
    latencies: list[float] = []

    async def client(first: int) -> None:
        for i in range(first, total, clients):
            began = time.perf_counter()
            await call(i)
            latencies.append(1000 * (time.perf_counter() - began))

    began = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return Sample(total, time.perf_counter() - began, tuple(latencies))


@dataclass(frozen=True)
class Operation:
    name: str
    http: Callable[[httpx.AsyncClient, int], Awaitable[object]]
    python: Callable[[Assistant, int], Awaitable[object]]


def _operations(user_id: int, deep_cursor: int) -> list[Operation]:
    async def ok(answer: Awaitable[httpx.Response], status: int = 200) -> None:
        response = await answer
        if response.status_code != status:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    def body(i: int) -> dict[str, Any]:
        return {"title": f"created {i}", "schedule": DAILY}

    return [
        Operation(
            f"list tasks, first page (limit {PAGE})",
            lambda c, i: ok(c.get("/v1/tasks", params={"limit": PAGE})),
            lambda a, i: a.tasks.list_tasks(user_id, limit=PAGE + 1),
        ),
        Operation(
            f"list tasks, deep cursor page (limit {PAGE})",
            lambda c, i: ok(c.get("/v1/tasks", params={"limit": PAGE, "cursor": deep_cursor})),
            lambda a, i: a.tasks.list_tasks(user_id, limit=PAGE + 1, after_id=deep_cursor),
        ),
        Operation(
            "schedule preview (5 firings)",
            lambda c, i: ok(c.post("/v1/schedule/preview", json={"schedule": WEEKLY})),
            lambda a, i: a.tasks.preview_schedule(user_id, WEEKLY, 5),
        ),
        Operation(
            "create task",
            lambda c, i: ok(c.post("/v1/tasks", json=body(i)), 201),
            lambda a, i: a.tasks.create_task(user_id, f"created {i}", schedule=DAILY),
        ),
    ]


@dataclass(frozen=True)
class Result:
    operation: str
    clients: int
    http: Sample
    python: Sample


async def _measure(
    base: str, api_key: str, settings_url: str, user_id: int, deep: int, sizes: tuple[int, int]
) -> list[Result]:
    sequential, concurrent = sizes
    results: list[Result] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    headers = {"Authorization": f"Bearer {api_key}"}
    engine = make_async_engine(settings_url)
    assistant = Assistant(_settings(settings_url), engine=engine)
    try:
        async with httpx.AsyncClient(
            base_url=base, headers=headers, limits=limits, timeout=60
        ) as client:
            for op in _operations(user_id, deep):

                def over_http(i: int, op: Operation = op) -> Awaitable[object]:
                    return op.http(client, i)

                def in_process(i: int, op: Operation = op) -> Awaitable[object]:
                    return op.python(assistant, i)

                await _run(over_http, WARM_UP, 1)
                await _run(in_process, WARM_UP, 1)
                calls = {1: sequential, CLIENTS: concurrent}
                http_runs = {n: await _run(over_http, total, n) for n, total in calls.items()}
                for clients, total in calls.items():
                    http = http_runs[clients]
                    python = await _run(in_process, total, clients)
                    results.append(Result(op.name, clients, http, python))
                    log(
                        f"{op.name}, {_clients(clients)}: HTTP {http.rate:,.0f} req/s "
                        f"(p50 {http.quantile(0.5):.1f} ms, p99 {http.quantile(0.99):.1f} ms); "
                        f"Python {python.rate:,.0f} calls/s "
                        f"(p50 {python.quantile(0.5):.2f} ms, p99 {python.quantile(0.99):.2f} ms)"
                    )
    finally:
        await engine.dispose()
    return results


#: What differs from the defaults, for the server and in process alike: no request-rate limit
#: (a benchmark's rate is far past a person's), and room for the tasks created past 10,000.
LIMITS = {"API_RATE_LIMIT_PER_MINUTE": "0", "MAX_ACTIVE_TASKS_PER_USER": "0"}


def _settings(url: str) -> Settings:
    return make_settings(url, "bench_unused:").model_copy(
        update={"api_rate_limit_per_minute": 0, "max_active_tasks_per_user": 0}
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve(url: str, prefix: str, home: Path) -> tuple[Service, str]:
    """``pa serve`` on a free loopback port, in its own session; waits for ``/healthz``."""
    port = _free_port()
    env = process_env(url, prefix, home) | LIMITS
    log_path = home / "serve.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [str(PA), "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=home,
            start_new_session=True,
        )
    register("service", f"{proc.pid} {prefix}")
    service = Service("pa serve", proc, log_path)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, what="pa serve", watch=[service])
    return service, base


async def _user_and_key(url: str) -> tuple[int, str]:
    async with Assistant(_settings(url)) as app:
        user_id = int(str(scalar(url, "SELECT min(id) FROM users")))
        return user_id, (await app.keys.create(user_id, "bench")).token


def _clients(n: int, who: str = "client") -> str:
    return f"1 {who}" if n == 1 else f"{n} {who}s at once"


def _table(results: list[Result]) -> str:
    lines = [
        "| operation | clients | HTTP req/s | HTTP p50 | HTTP p99 | Python calls/s | "
        "Python p50 | Python p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.operation} | {r.clients} | {r.http.rate:,.0f} | "
            f"{r.http.quantile(0.5):.1f} ms | {r.http.quantile(0.99):.1f} ms | "
            f"{r.python.rate:,.0f} | {r.python.quantile(0.5):.2f} ms | "
            f"{r.python.quantile(0.99):.2f} ms |"
        )
    return "\n".join(lines)


def measure(quick: bool) -> Figure:
    sizes = (100, 200) if quick else (500, 1000)
    prefix = f"bench_{token()}:"
    with database() as url, tempfile.TemporaryDirectory(prefix="pa-bench-api-") as tmp:
        loaded = load_tasks(
            url, TASKS, start=utc_seconds(utcnow()) + timedelta(days=1), spread_s=86_400, users=1
        )
        vacuum(url, "ai_tasks", "users")
        log(f"{loaded.count:,} tasks of one user loaded in {loaded.seconds:.1f} s")
        user_id, api_key = asyncio.run(_user_and_key(url))
        deep = loaded.last_id - PAGE  # the page after it is the last one
        service, base = _serve(url, prefix, Path(tmp))
        try:
            results = asyncio.run(_measure(base, api_key, url, user_id, deep, sizes))
        finally:
            stop(service)
    text = _table(results)
    print(f"\n{text}\n", flush=True)
    rows = [
        row
        for r in results
        for row in (
            Row(f"{r.operation}: HTTP, {_clients(r.clients)}", r.http.rate, "req/s"),
            Row(
                f"{r.operation}: Python API, {_clients(r.clients, 'caller')}",
                r.python.rate,
                "calls/s",
            ),
        )
    ]
    return Figure(
        KEY,
        TITLE,
        tuple(rows),
        method=METHOD.format(
            page=PAGE,
            tasks=TASKS,
            warm=WARM_UP,
            sequential=sizes[0],
            concurrent=sizes[1],
            clients=CLIENTS,
            deep=TASKS - PAGE,
            table=text,
        ),
        notes=(
            "HTTP latency is the client's: it includes the client's own time and, with "
            f"{CLIENTS} clients, the time a request waits for the server.",
        ),
        params={
            "tasks": f"{TASKS:,}",
            "limit": PAGE,
            "clients": CLIENTS,
            "calls": "/".join(map(str, sizes)),
        },
    )
