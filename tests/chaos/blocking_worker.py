"""A Celery worker whose event loop the test can block: ``python -m chaos.blocking_worker TRIGGER
ARGS...`` runs ``celery ARGS...`` in this process, with a watcher thread.

When the file ``TRIGGER`` appears, holding a number of seconds, the watcher removes it and
schedules ``time.sleep(seconds)`` on the process's event loop (``runtime.loop``, the loop that
holds every run of the process: agent calls, their timeouts, the database writes), as a
CPU-bound parse or render would block it. It writes ``TRIGGER.started`` as the sleep begins
and ``TRIGGER.ended`` as it ends, each holding ``time.time()``. The product has no test hook
for this: the wrapper reaches the loop as any code of the process would. The worker must use
the threads pool (the default): a prefork child would not have the watcher thread.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from celery.__main__ import main as celery_main

from personal_assistant.workers.runtime import runtime

POLL_S = 0.05


def _hold(seconds: float, trigger: Path) -> None:
    """Runs on the event loop: blocks it for ``seconds``."""
    Path(f"{trigger}.started").write_text(repr(time.time()))
    time.sleep(seconds)
    Path(f"{trigger}.ended").write_text(repr(time.time()))


def _watch(trigger: Path) -> None:
    while True:
        if trigger.exists():
            seconds = float(trigger.read_text())
            trigger.unlink()
            loop = runtime.loop._loop  # the loop thread's loop; None before the first run
            if loop is None:
                Path(f"{trigger}.refused").write_text("no event loop yet")
            else:
                loop.call_soon_threadsafe(_hold, seconds, trigger)
        time.sleep(POLL_S)


def main() -> None:
    trigger = Path(sys.argv[1])
    threading.Thread(target=_watch, args=(trigger,), name="chaos-blocker", daemon=True).start()
    sys.argv = ["celery", *sys.argv[2:]]
    celery_main()


if __name__ == "__main__":
    main()
