"""Memory and CPU of a process and all its descendants, read from ``/proc`` (Linux).

A worker's pool children and a Dramatiq worker's processes are counted with the process that
started them: :func:`tree_memory` (PSS and RSS), :func:`tree_cpu_seconds` (:func:`cpu_seconds`
for one process), and :class:`PeakMemory`, which samples the peaks in a thread while a phase
runs.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB of ``pid`` and all its descendants."""
    pss = rss = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        pss += _kib(Path(f"/proc/{current}/smaps_rollup"), "Pss:")
        rss += _kib(Path(f"/proc/{current}/status"), "VmRSS:")
        todo.extend(_children(current))
    return pss, rss


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants, from /proc."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
        except (OSError, IndexError, ValueError):
            continue
        todo.extend(_children(current))
    return total


class PeakMemory:
    """Samples a process tree's memory in a thread until :meth:`stop`; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.peak_pss = self.peak_rss = 0
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            pss, rss = tree_memory(self.pid)
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self._stop.wait(self._interval)

    def stop(self) -> PeakMemory:
        self._stop.set()
        self._thread.join()
        return self
