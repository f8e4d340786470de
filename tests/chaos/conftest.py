"""The chaos suite's own PostgreSQL cluster and results file; one Redis per scenario.

Every test here is marked ``chaos``; the scenarios of :data:`CONCURRENT` are marked
``concurrent`` too, and ``tests/chaos/run.sh`` (``make chaos``, ``make test``) runs them a few
at a time after the others have run one at a time. The servers are throw-away processes on free
ports, so the faults injected never reach the machine's services or other tests. A scenario
skips when ``redis-server`` or PostgreSQL's ``initdb`` is missing, and fails instead when ``CI``
is set.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chaos import report
from chaos.harness import Chaos
from chaos.servers import PostgresServer, RedisServer

#: Scenarios whose figures and assertions are counts (lost, duplicated, stuck), not timings,
#: and which spend most of their time waiting out a fault: they may share the machine with each
#: other. A scenario that measures lateness, a lease or a catch-up time, or asserts that
#: something happened in time, is not listed: it runs alone (``test_stalls.py`` reports how
#: soon a stopped worker is named, and once missed its window when run beside others).
CONCURRENT = frozenset(
    {
        "test_bad_input.py",
        "test_dst_catchup.py",
        "test_postgres_faults.py",
        "test_rabbitmq_faults.py",
        "test_redis_faults.py",
        "test_shutdown.py",
        "test_timeouts.py",
        "test_worker_kills.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if here in path.parents:
            item.add_marker(pytest.mark.chaos)
            if path.name in CONCURRENT:
                item.add_marker(pytest.mark.concurrent)


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("PA_CHAOS_RESULTS"):
        handle, name = tempfile.mkstemp(prefix="pa-chaos-", suffix=".jsonl")
        os.close(handle)
        os.environ["PA_CHAOS_RESULTS"] = name


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    path = report.results_path()
    rows = report.load(path) if path else []
    if not rows:
        return
    terminalreporter.section("reliability (chaos scenarios)")
    terminalreporter.write_line(report.text(rows))
    if os.environ.get("PA_CHAOS_WRITE_DOC") == "1":
        processes = os.environ.get("CHAOS_PROCESSES", "3")
        stamp = (
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make chaos` "
            f"(`tests/chaos/run.sh`: the `concurrent` scenarios {processes} at a time) on "
            f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()})."
        )
        report.write_doc(rows, stamp)
        terminalreporter.write_line(f"written to {report.DOC}")


def _require(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing, and CI is set: the chaos suite needs it")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def chaos_pg() -> Iterator[PostgresServer]:
    _require(PostgresServer.available(), "PostgreSQL's initdb")
    with PostgresServer() as server:
        yield server


@pytest.fixture
def chaos(
    request: pytest.FixtureRequest, chaos_pg: PostgresServer, tmp_path: Path
) -> Iterator[Chaos]:
    _require(RedisServer.available(), "redis-server")
    name = request.node.name.removeprefix("test_")[:40].replace("[", "_").replace("]", "")
    with Chaos(name, chaos_pg, tmp_path) as stack:
        yield stack
