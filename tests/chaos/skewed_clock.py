"""A process whose clock is off: ``python -m chaos.skewed_clock SECONDS ARGS...`` runs
``celery ARGS...`` with the project's clock moved by ``SECONDS`` (negative: behind).

The project reads the host's time through one function,
:func:`personal_assistant.clock.utcnow`; this wrapper replaces it before any module of
the project is imported, so every ``from ... import utcnow`` and every ``clock=utcnow``
default in the process sees the skewed time, as on a host whose clock is wrong. (libfaketime
would skew the whole process, but its 0.9.10 ``clock_nanosleep`` and
``pthread_cond_timedwait`` wrappers make Python's ``time.sleep`` fail or
``threading.Event.wait`` hang, whichever way the monotonic clock is set.)
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from personal_assistant import clock


def main() -> None:
    offset = timedelta(seconds=float(sys.argv[1]))

    def skewed_utcnow() -> datetime:
        return datetime.now(UTC) + offset

    clock.utcnow = skewed_utcnow
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", *sys.argv[2:]]
    celery_main()


if __name__ == "__main__":
    main()
