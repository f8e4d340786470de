"""A hostile feed costs its owner a refusal and nobody else anything (issue 10, items 1-4).

Mallory subscribes to every feed of the hostile corpus (:mod:`support.hostile_feeds`: runaway
rules, expansion bombs, deep nesting, huge files, broken encodings, icalendar's own fuzz
cases), plus a gzip bomb sent with ``Content-Encoding: gzip, gzip, gzip`` and a feed that
redirects to an internal address. The workers are split as production splits what matters
here (``docker/docker-compose.prod.yml``, which also gives ``sync_tasks,file_tasks`` a pool of
their own): one consumes ``ai_tasks``, the other the four other queues. While the second syncs
every feed three times over (a refused feed is handed out again on every sweep), the chaos
user's one-shot runs flow through the first. Compared with the same load while no feed is
synced:

* the other user's lateness p99 stays within 2x of the quiet one (plus :data:`JITTER_S`,
  the quiet figure's own spread). What stood in the way, in
  the order it was found: a TLS context built for every fetch on the runs' event loop (half
  of the loop's busy time: p99 2.2 s), feed readers at niceness 10 taking both cores (0.3 s,
  now ``SCHED_IDLE``), and the syncs sharing the runs' loop and interpreter lock (0.1-0.2 s,
  now a loop of their own, :attr:`Runtime.bulk <personal_assistant.workers.runtime.Runtime>`,
  and in production a process of their own). The figures: docs/security.md;
* no worker stalls: each one's loop answers throughout (no ``event=loop_blocked``: silent for
  more than ``LEASE_MARGIN``), each is alive at the end, and neither logs a traceback;
* every feed ends parsed or refused with a clear one-line message: the one the corpus
  expects where it names one, and never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chaos import report
from chaos.harness import Chaos, Load, seed_one_shots_spread_bulk
from personal_assistant.calendars import store as calendar_store
from personal_assistant.database.engine import make_async_engine
from personal_assistant.tasks.manager import AITaskManager
from support.hostile_feeds import EXPECTED, PARSED, hostile_feeds
from support.processes import wait_until
from support.stack import client_app, settings_for

SYNC = "personal_assistant.workers.tasks.sync_tasks.sync_calendar"
#: The other user's runs, per load: enough that the p99 is not one run's accident.
RUNS = 200
SPREAD = timedelta(seconds=20)
SWEEPS = 3
WARM_UP_RUNS = 5
#: The quiet p99's own spread from run to run on a 2-core machine: 0.04-0.12 s over 11 runs
#: of this scenario (whether one of the stack's ~0.1 s stalls, present in both loads, falls in
#: the top 1 %). The bound is 2x the quiet p99 plus this.
JITTER_S = 0.05
#: The quiet p99 the bound is taken from, at least: the stack's own ~0.1 s stalls fall in the
#: busy load's top 1 % or not, whatever the quiet one showed. Without it, a quiet run that
#: happened to see none (0.048 s, in a fresh-clone CI of 2fc5017) made 0.21 s busy a failure.
QUIET_FLOOR_S = 0.1
#: ``ai_tasks`` on a worker of its own, as in ``docker/docker-compose.prod.yml``.
WORKERS = {
    "runs": "ai_tasks",
    "worker": "email_tasks,file_tasks,sync_tasks,maintenance_tasks",
}
LIVE = {"HEARTBEAT_INTERVAL": "1", "LEASE_MARGIN": "2"}


@functools.cache
def _gzip_bomb() -> bytes:
    """64 MiB of zeros gzipped three times: a few hundred bytes that decode past any limit."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    once = b"".join(inner.compress(zeros) for _ in range(64)) + inner.flush()
    return gzip.compress(gzip.compress(once, 9), 9)


class FeedServer:
    """Every feed of the corpus at ``/<n>``, the gzip bomb at ``/bomb``, a redirect to an
    internal address (the cloud metadata service's) at ``/redirect``; on 127.0.0.1 only."""

    def __init__(self, feeds: list[bytes]) -> None:
        self.feeds = feeds
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers: dict[str, str] = {"Content-Type": "text/calendar"}
                if self.path == "/bomb":
                    body = _gzip_bomb()
                    headers["Content-Encoding"] = "gzip, gzip, gzip"
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                else:
                    body = outer.feeds[int(self.path.strip("/"))]
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{path}"

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _subscribe(chaos: Chaos, server: FeedServer, names: list[str]) -> dict[int, str]:
    """Mallory's feeds: feed id -> corpus name."""

    async def go() -> dict[int, str]:
        async with AITaskManager(settings_for(chaos.env)) as manager:
            mallory = await manager.create_user("Mallory")
        engine = make_async_engine(chaos.database_url, pooled=False)
        feeds: dict[int, str] = {}
        try:
            entries = [(f"f{n}", server.url(str(n)), name) for n, name in enumerate(names)]
            entries += [
                ("bomb", server.url("bomb"), "gzip-bomb"),
                ("redirect", server.url("redirect"), "redirect-to-metadata"),
            ]
            async with engine.begin() as conn:
                for feed_name, url, name in entries:
                    spec = calendar_store.validate(feed_name, url, horizon_days=30)
                    feed = await calendar_store.add(conn, mallory.id, spec, now=datetime.now(UTC))
                    feeds[feed.id] = name
        finally:
            await engine.dispose()
        return feeds

    return asyncio.run(go())


def _lateness_p99(chaos: Chaos, load: Load) -> float:
    value = chaos.db.scalar(
        "SELECT percentile_cont(0.99) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM finished_at - scheduled_for)) "
        "FROM task_runs WHERE task_id = ANY(:ids)",
        ids=list(load.fires_at),
    )
    return float(value)


def _load(chaos: Chaos, title: str, runs: int = RUNS, spread: timedelta = SPREAD) -> Load:
    start = datetime.now(UTC) + timedelta(seconds=3)
    return seed_one_shots_spread_bulk(chaos, runs, start=start, spread=spread, title=title)


def _synced(chaos: Chaos, feeds: dict[int, str], sweeps: int) -> bool:
    """Whether every feed has been synced (or refused) ``sweeps`` times: the sync count is
    not stored, so the syncing worker's log is read for one line per sync."""
    log = chaos.processes.log("worker")
    ends = ("event=calendar_synced", "event=calendar_sync_failed", "calendar_sync_still_refused")
    return sum(log.count(end) for end in ends) >= sweeps * len(feeds)


def _sweeps(chaos: Chaos, feeds: dict[int, str]) -> Iterator[int]:
    app = client_app(settings_for(chaos.env))
    try:
        for sweep in range(1, SWEEPS + 1):
            for feed_id in feeds:
                app.send_task(SYNC, args=(feed_id,))
            yield sweep
    finally:
        app.close()


def test_hostile_feeds_hurt_nobody_else(chaos: Chaos) -> None:
    corpus = list(hostile_feeds())
    names = [name for name, _ in corpus]
    chaos.env.update(LIVE)
    with FeedServer([body for _, body in corpus]) as server:
        chaos.beat()
        for name, queues in WORKERS.items():
            chaos.worker(name, extra=("-Q", queues))
        for name in WORKERS:
            chaos.wait_ready(name)

        # The workers' first runs import and connect what later runs find ready.
        warm = _load(chaos, "warm-up", WARM_UP_RUNS, timedelta(seconds=1))
        assert chaos.settle(warm, timeout=120), chaos.logs(*WORKERS, "beat")
        quiet = _load(chaos, "quiet")
        assert chaos.settle(Load({**warm.fires_at, **quiet.fires_at}), timeout=120)
        quiet_p99 = _lateness_p99(chaos, quiet)

        feeds = _subscribe(chaos, server, names)
        busy = _load(chaos, "busy")
        started = time.monotonic()
        for sweep in _sweeps(chaos, feeds):
            wait_until(
                lambda s=sweep: _synced(chaos, feeds, s),
                300,
                interval=0.5,
                message=f"sweep {sweep} of {len(feeds)} hostile feeds",
            )
        sync_s = time.monotonic() - started
        every = Load({**warm.fires_at, **quiet.fires_at, **busy.fires_at})  # settle counts all
        settled = chaos.settle(every, timeout=120)
        busy_p99 = _lateness_p99(chaos, busy)
        alive = [name for name in WORKERS if chaos.processes.procs[name].poll() is None]
        errors = dict(
            chaos.db.rows(
                "SELECT id, last_error FROM calendar_feeds WHERE id = ANY(:ids)", ids=list(feeds)
            )
        )
        statuses = chaos.db.rows(
            "SELECT channel, status, attempts, last_error FROM notifications "
            "WHERE status <> 'delivered'"
        )
        outcome = chaos.outcome(
            every,
            None,
            notes=(
                f"{len(feeds)} hostile feeds synced {SWEEPS} times in {sync_s:.0f} s while "
                f"{RUNS} runs of another user fired; their lateness p99 {busy_p99:.2f} s "
                f"(quiet: {quiet_p99:.2f} s)"
            ),
        )
    logs = "".join(chaos.processes.log(name) for name in WORKERS)
    refused = sum(1 for e in errors.values() if e)
    outcome.extra.update(
        quiet_p99_s=round(quiet_p99, 2),
        busy_p99_s=round(busy_p99, 2),
        feeds=len(feeds),
        refused=refused,
    )
    report.record(outcome)
    assert settled and outcome.clean and not statuses, (outcome, statuses)
    assert busy_p99 <= 2 * max(quiet_p99, QUIET_FLOOR_S) + JITTER_S, (busy_p99, quiet_p99)
    assert alive == list(WORKERS), chaos.logs(*WORKERS)
    assert "event=loop_blocked" not in logs, chaos.logs(*WORKERS)
    assert "Traceback" not in logs, chaos.logs(*WORKERS)
    for feed_id, name in feeds.items():
        error = errors[feed_id]
        expected = EXPECTED.get(name)
        if name == "gzip-bomb":
            assert error and "too large" in error, (name, error)
        elif name == "redirect-to-metadata":
            assert error and "refused destination" in error, (name, error)
        elif expected == PARSED:
            assert error is None, (name, error)
        elif expected is not None:
            assert error and expected in error, (name, error, expected)
        else:  # icalendar's fuzz cases: parsed, or refused in one clear line
            assert error is None or ("\n" not in error and "Traceback" not in error), error
