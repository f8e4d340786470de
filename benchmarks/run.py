"""``make bench``: run every benchmark, print the table, write ``docs/performance.md``.

The page's charts (``docs/img/perf-*.png``, ``benchmarks/plots.py``) are drawn from the same
figures when the page is written.

Each benchmark runs in a child process of its own (``--child NAME``) with a deadline: the
project's Celery app and runtime are per-process singletons configured once, and a hung or
failed benchmark must not stop the others. ``--only NAME`` (repeatable) and ``--quick``
(reduced sizes) are for development; the page is written only by a full run, unless
``--write-doc`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from benchmarks.fixtures import REGISTRY_ENV, clean_up_registered
from benchmarks.report import Figure, failed, text_table, write_doc


class Benchmark(NamedTuple):
    module: str
    title: str
    deadline_s: float


BENCHMARKS: dict[str, Benchmark] = {
    "claim": Benchmark("benchmarks.claim_rate", "Scheduler claim rate", 600),
    "e2e": Benchmark("benchmarks.end_to_end", "End-to-end runs/s", 360),
    "fairness": Benchmark("benchmarks.fairness", "Fairness: one user's backlog", 420),
    "idle": Benchmark("benchmarks.idle_tick", "Idle tick cost", 480),
    "lateness": Benchmark("benchmarks.lateness", "Firing lateness", 420),
    "latency": Benchmark("benchmarks.latency_bound", "Latency-bound runs/s", 420),
    "memory": Benchmark("benchmarks.memory_flat", "Worker memory over 100,000 runs", 420),
    "api": Benchmark("benchmarks.api", "HTTP API and Python API", 300),
    "clone": Benchmark("benchmarks.fresh_clone", "Fresh clone to the demo's notification", 540),
    "startup": Benchmark("benchmarks.startup", "CLI start-up", 300),
}


def _child(name: str, out: Path, quick: bool) -> int:
    module = importlib.import_module(BENCHMARKS[name].module)
    measure: Callable[[bool], Figure] = module.measure
    figure = measure(quick)
    out.write_text(figure.to_json(), encoding="utf-8")
    return 0


def _run_one(name: str, quick: bool, workdir: Path) -> Figure:
    """Run one benchmark in a child process, within its deadline, and clean up after it."""
    bench = BENCHMARKS[name]
    out = workdir / f"{name}.json"
    registry = workdir / f"{name}.registry"
    command = [sys.executable, "-m", "benchmarks.run", "--child", name, "--out", str(out)]
    if quick:
        command.append("--quick")
    print(f"\n== {bench.title} ({name}) ==", flush=True)
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen(command, env={**os.environ, REGISTRY_ENV: str(registry)})
    code: int | None = None
    try:
        code = proc.wait(timeout=bench.deadline_s)
    except subprocess.TimeoutExpired:
        print(f"   ({name} passed its deadline of {bench.deadline_s:.0f} s: stopping it)")
    finally:
        if proc.poll() is None:
            # Its finally blocks stop its services and drop its database: interrupt first.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        leftovers = clean_up_registered(registry)
        if leftovers:
            print(f"   (cleaned up after {name}: {', '.join(leftovers)})", flush=True)
    if code is None:
        return failed(name, bench.title, f"did not finish within {bench.deadline_s:.0f} s")
    print(f"   ({name} took {time.monotonic() - began:.0f} s)", flush=True)
    if code != 0 or not out.exists():
        return failed(name, bench.title, f"the benchmark exited with status {code}")
    figure = Figure.from_json(out.read_text(encoding="utf-8"))
    load = (
        f"Machine load average (1 min) at the start and end of this benchmark: "
        f"{load_before:.1f} and {os.getloadavg()[0]:.1f}, on {os.cpu_count()} cores "
        "(includes the benchmark's own processes and anything else running)."
    )
    return replace(figure, notes=(*figure.notes, load))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        help="run only this benchmark (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="reduced sizes, for development")
    parser.add_argument(
        "--write-doc",
        action="store_true",
        help="write docs/performance.md and its charts even for a partial or quick run",
    )
    parser.add_argument("--child", choices=sorted(BENCHMARKS), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.out, args.quick)

    names = args.only or list(BENCHMARKS)
    started = datetime.now(UTC)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pa-bench-") as tmp:
        figures = [_run_one(name, args.quick, Path(tmp)) for name in names]
    seconds = time.monotonic() - began
    print(
        f"\nBenchmarks finished in {seconds / 60:.1f} min"
        + (" (--quick: reduced sizes)" if args.quick else "")
        + "\n",
        flush=True,
    )
    print(text_table(figures), flush=True)
    if args.write_doc or (not args.only and not args.quick):
        path = write_doc(figures, started, seconds, args.quick)
        print(f"\nWrote {path}", flush=True)
    else:
        print("\n(docs/performance.md not written: partial or quick run; see --write-doc)")
    return 1 if any(not f.rows for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
