"""``make dashboard``: the Grafana dashboard's main panels, drawn from a real scrape series.

Grafana does not run on these machines, so this draws the panels of
``deploy/grafana/personal-assistant.json`` with matplotlib from what Prometheus would have
scraped: a worker (``METRICS_PORT``), the scheduler and ``pa metrics serve`` run on a fresh
database and Redis prefix while 3,000 daily tasks fall due over 90 seconds and 2,000 more all
at once in the middle (one task in ten fails its first attempt, then succeeds; one in three
takes its agent half a second, so that runs are in flight). Every 2 s the three ``/metrics``
pages are read; the rates and quantiles are computed from the series the way PromQL's ``rate``
and ``histogram_quantile`` compute them. Writes ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.fixtures import (
    ROOT,
    database,
    execute,
    load_tasks,
    log,
    process_env,
    redis_prefix,
    start_celery,
    stop,
    token,
    utc_seconds,
    worker_args,
)
from personal_assistant.clock import utcnow
from personal_assistant.workers.routing import worker_queues

TASKS = 3000
SPREAD_S = 90.0
BURST = 2000
SCRAPE_EVERY_S = 2.0
WINDOW = 5  # scrapes per rate window (10 s)
OUT = ROOT / "docs" / "img" / "dashboard.png"
PORTS = {"worker": 19808, "scheduler": 19809, "exporter": 19807}

#: One scrape: {(metric name, sorted labels): value}.
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Scrape:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(sample: Scrape, name: str, **labels: str) -> float:
    return sum(v for (n, key), v in sample.items() if n == name and set(labels.items()) <= set(key))


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """PromQL's ``histogram_quantile`` over cumulative bucket counts (``le`` -> count)."""
    bounds = sorted(buckets)
    count = buckets[bounds[-1]] if bounds else 0.0
    if count <= 0:
        return float("nan")
    rank = q * count
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-12)
        lower, below = le, buckets[le]
    return lower


def bucket_deltas(a: Scrape, b: Scrape, name: str) -> dict[float, float]:
    deltas: dict[float, float] = {}
    for (n, key), value in b.items():
        if n != f"{name}_bucket":
            continue
        le = float(dict(key)["le"])
        deltas[le] = deltas.get(le, 0.0) + value - a.get((n, key), 0.0)
    return deltas


def series(
    times: list[float], scrapes: list[Scrape], value: Callable[[Scrape, Scrape, float], float]
) -> tuple[list[float], list[float]]:
    """``value(earlier, later, seconds)`` over a sliding window of :data:`WINDOW` scrapes."""
    xs, ys = [], []
    for i in range(WINDOW, len(scrapes)):
        span = times[i] - times[i - WINDOW]
        xs.append(times[i] - times[0])
        ys.append(value(scrapes[i - WINDOW], scrapes[i], span))
    return xs, ys


def rate_by(
    ax: Any,
    times: list[float],
    scrapes: list[Scrape],
    name: str,
    label: str,
    values: tuple[str, ...],
) -> None:
    """One line per value of ``label``: ``rate(name[10s])``."""
    for value in values:

        def rate(a: Scrape, b: Scrape, seconds: float, v: str = value) -> float:
            return (total(b, name, **{label: v}) - total(a, name, **{label: v})) / seconds

        xs, ys = series(times, scrapes, rate)
        ax.plot(xs, ys, label=value)


def run_load(home: Path) -> tuple[list[float], dict[str, list[Scrape]]]:
    with redis_prefix() as prefix, database() as url:
        start = utc_seconds(utcnow()) + timedelta(seconds=15)
        load_tasks(url, TASKS, start=start, spread_s=SPREAD_S, kinds="mixed")
        load_tasks(url, BURST, start=start + timedelta(seconds=SPREAD_S / 2), kinds="mixed")
        execute(
            url,
            "UPDATE ai_tasks SET ai_context = "
            '\'{"simulate_failure": "drill", "simulate_failure_attempts": 1}\' '
            "WHERE id % 10 = 0",
            "UPDATE ai_tasks SET ai_context = '{\"simulate_delay_seconds\": 0.5}' WHERE id % 3 = 1",
        )
        env = process_env(url, prefix, home)
        worker = start_celery(
            "worker",
            "personal_assistant.workers.celery_app",
            worker_args(worker_queues(), f"dashboard-{token()}"),
            {**env, "METRICS_PORT": str(PORTS["worker"])},
            home,
        )
        beat = start_celery(
            "beat",
            "personal_assistant.workers.celery_app",
            ["beat", "-l", "warning"],
            {**env, "METRICS_PORT": str(PORTS["scheduler"])},
            home,
        )
        exporter = subprocess.Popen(
            [sys.executable, "-m", "personal_assistant.cli.main", "metrics", "serve",
             "--port", str(PORTS["exporter"])],
            env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home,
        )  # fmt: skip
        times: list[float] = []
        scrapes: dict[str, list[Scrape]] = {name: [] for name in PORTS}
        try:
            time.sleep(10)
            ends = time.monotonic() + 15 + SPREAD_S + 25
            while time.monotonic() < ends:
                began = time.monotonic()
                got = {name: scrape(port) for name, port in PORTS.items()}
                times.append(began)
                for name, sample in got.items():
                    scrapes[name].append(sample)
                time.sleep(max(0.0, SCRAPE_EVERY_S - (time.monotonic() - began)))
        finally:
            exporter.terminate()
            exporter.wait(20)
            stop(beat)
            stop(worker)
        log(f"{len(times)} scrapes of 3 targets")
        return times, scrapes


def draw(times: list[float], scrapes: dict[str, list[Scrape]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worker, exporter = scrapes["worker"], scrapes["exporter"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), constrained_layout=True)
    fig.suptitle(
        "personal_assistant, one worker: 3,000 tasks due over 90 s and 2,000 at once midway "
        "(drawn from /metrics)"
    )

    ax = axes[0][0]
    rate_by(
        ax, times, worker, "pa_runs_finished_total", "outcome", ("succeeded", "retrying", "failed")
    )
    ax.set_title("Runs finished / s, by outcome")

    ax = axes[0][1]
    for q in (0.5, 0.99):
        xs, ys = series(
            times,
            worker,
            lambda a, b, s, q=q: 1e3 * quantile(q, bucket_deltas(a, b, "pa_run_lateness_seconds")),
        )
        ax.plot(xs, ys, label=f"p{int(q * 100)}")
    ax.set_title("Firing lateness (ms)")

    ax = axes[0][2]
    xs, ys = series(
        times,
        worker,
        lambda a, b, s: (
            (total(b, "pa_runs_finished_total", outcome="failed")
             + total(b, "pa_runs_finished_total", outcome="retrying")
             - total(a, "pa_runs_finished_total", outcome="failed")
             - total(a, "pa_runs_finished_total", outcome="retrying"))
            / max(1.0, total(b, "pa_runs_finished_total") - total(a, "pa_runs_finished_total"))
        ),
    )  # fmt: skip
    ax.plot(xs, ys, label="failed or retrying / finished")
    ax.set_ylim(0, 1)
    ax.set_title("Failure ratio (fraction)")

    ax = axes[1][0]
    x0 = times[0]
    for queue in ("ai_tasks", "maintenance_tasks"):
        ax.plot(
            [t - x0 for t in times],
            [total(s, "pa_queue_depth", queue=queue) for s in exporter],
            label=queue,
        )
    ax.set_title("Queue depth (messages)")

    ax = axes[1][1]
    ax.plot(
        [t - x0 for t in times], [total(s, "pa_runs_in_flight") for s in worker], label="in flight"
    )
    ax.set_title("Runs in flight (one worker)")

    ax = axes[1][2]
    rate_by(
        ax, times, worker, "pa_notifications_total", "result", ("delivered", "retrying", "failed")
    )
    ax.set_title("Notifications / s, by result")

    for ax in axes.flat:
        ax.set_xlabel("seconds")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    log(f"written to {out.relative_to(ROOT)}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pa-dashboard-") as tmp:
        times, scrapes = run_load(Path(tmp))
    draw(times, scrapes, OUT)
    last = scrapes["worker"][-1]
    log(
        f"runs finished: {total(last, 'pa_runs_finished_total'):.0f} "
        f"(succeeded {total(last, 'pa_runs_finished_total', outcome='succeeded'):.0f}); "
        f"notifications {total(last, 'pa_notifications_total'):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
