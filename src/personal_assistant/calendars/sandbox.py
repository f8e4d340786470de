"""Read a calendar feed in a process of its own, under limits: a hostile feed costs its owner a
refusal and nobody else anything.

Why a process. Parsing and expanding a feed is CPU-bound Python. In a thread of the worker it
still shares the worker's interpreter (its GIL: every run on the worker's event loop waits
while it runs) and its memory (a feed that needs gigabytes takes the worker down, with every
run on it). The checks of :mod:`personal_assistant.calendars.checks` refuse what they can see
before expanding anything, but they cannot see everything (a huge feed, a rule their estimate
lets through, a defect in a library). A child process has its own CPU time and address space,
and the kernel caps both (``resource.setrlimit``: ``RLIMIT_CPU``, ``RLIMIT_AS``); the parent
kills it at a wall-clock deadline. What happens in there costs the child, not the worker.

How. A :mod:`multiprocessing` ``forkserver`` context, never a plain ``fork`` of the worker: the
worker has threads (the heartbeat, the executor threads of its event loop), and a fork copies
whatever lock they hold at that instant. The fork server is a fresh, single-threaded
interpreter, started once per worker process on the first parse, with the calendar modules
(and what the program's main script imports, which each child would otherwise import again:
:func:`_preload`) preloaded: a parse is a fork of that small clean process, about 10 ms (a
``spawn`` would start a new interpreter and import icalendar: ~0.3 s). The parent waits in a
thread, off the event loop. The result comes back on a pipe: the occurrences, or the refusal.

What the parent makes of the child's end, each a
:class:`~personal_assistant.errors.ValidationError` naming ``feed`` (a refusal for the feed's
content, remembered as such by the sync):

* the core refused the feed: its own message, as in-process;
* the child ran out of memory (``MemoryError`` under ``RLIMIT_AS``): "needed more than N MiB
  to read";
* the kernel stopped it at its CPU limit (``SIGXCPU``, then ``SIGKILL``): "took longer than N s
  (CPU time) to read"; the deadline passed and the parent killed it: "took longer than N s to
  read";
* it ended any other way (a crash in a library's C code): "its reader stopped (...)".

An exception of any other type in the child is a defect, not the feed's: it comes back as a
:class:`SandboxCrash` (``RuntimeError``) with the child's type and message, which the sync logs.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from personal_assistant.calendars import ics as core
from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from personal_assistant.config import Settings

__all__ = ["DEFAULT_LIMITS", "Limits", "SandboxCrash", "call", "parse_feed", "run"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_MIB = 1024 * 1024
#: The wall-clock deadline is this many times the CPU limit: on a busy machine the child
#: waits its turn for a CPU, and the deadline is for a child that waits on nothing at all.
DEADLINE_FACTOR = 3
#: Children one process runs at once: each may use ``CALENDAR_PARSE_MEMORY_MB``, so a worker
#: syncing many feeds at once must not multiply that by its thread count. Others wait their
#: turn (off the event loop), and their deadline starts with their child.
MAX_CHILDREN = 2
#: A child's niceness where ``SCHED_IDLE`` does not exist (see ``_last_in_line``).
NICEST = 19
_CHILDREN = threading.BoundedSemaphore(MAX_CHILDREN)


@dataclass(frozen=True)
class Limits:
    """What one child may use: address space (MiB), CPU time (s), wall-clock time (s)."""

    memory_mb: int = 512
    cpu_seconds: int = 10
    wall_seconds: float = 10.0 * DEADLINE_FACTOR

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """``CALENDAR_PARSE_MEMORY_MB`` and ``CALENDAR_PARSE_SECONDS`` (CPU time); the deadline
        is :data:`DEADLINE_FACTOR` times the latter."""
        seconds = settings.calendar_parse_seconds
        return cls(settings.calendar_parse_memory_mb, seconds, float(seconds * DEADLINE_FACTOR))


DEFAULT_LIMITS = Limits()


class SandboxCrash(RuntimeError):
    """The child raised an exception other than a refusal: a defect, ours or a library's."""


async def parse_feed(
    data: bytes,
    *,
    timezone: str,
    now: datetime,
    horizon_days: int,
    limits: Limits = DEFAULT_LIMITS,
) -> list[core.Occurrence]:
    """:func:`personal_assistant.calendars.ics.parse_feed` in a child process under ``limits``
    (module doc); the event loop is free meanwhile."""
    return await run(_parse, data, timezone, now, horizon_days, limits=limits)


async def run(target: Callable[..., T], *args: Any, limits: Limits) -> T:
    """``target(*args)`` in a child process under ``limits``, awaited from a thread.

    ``target`` is a module-level function (the child imports it by name) and its arguments and
    result are pickled. Raises as :func:`call` does."""
    return await asyncio.to_thread(call, target, args, limits)


def call(target: Callable[..., T], args: tuple[Any, ...], limits: Limits) -> T:
    """``target(*args)`` in a child process under ``limits``; blocks (call it off the loop).

    A :class:`ValidationError` of the child is raised again here; a child stopped by a limit,
    or ended otherwise, raises ValidationError (``feed``); any other exception of the child a
    :class:`SandboxCrash`."""
    with _CHILDREN:
        return _call(target, args, limits)


def _call(target: Callable[..., T], args: tuple[Any, ...], limits: Limits) -> T:
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child, args=(sender, target, args, limits), name="calendar-reader", daemon=True
    )
    try:
        process.start()
    finally:
        sender.close()  # the child's end: the receiver sees EOF once the child is gone
    try:
        outcome, killed = _wait(process, receiver, limits.wall_seconds)
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join()
    exitcode = process.exitcode
    process.close()
    return cast(T, _result(outcome, exitcode, killed, limits))


# --- the parent's side ------------------------------------------------------------------------

_CONTEXT: ForkServerContext | None = None
_CONTEXT_LOCK = threading.Lock()


def _context() -> ForkServerContext:
    """The fork server context, made on first use (its server starts with the first child)."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_preload())
            _CONTEXT = context
        return _CONTEXT


def _preload() -> list[str]:
    """What the fork server imports once, so that no child imports it again: the calendar
    modules (:mod:`.ics` and what it imports: the checks, the cost model, the libraries), and
    the modules the program's main script takes names from.

    multiprocessing has each child run the parent's main script again (as ``__mp_main__``) when
    the program was started from a script (``celery``, ``pa``, ``pytest``: console scripts), and
    its fork server does not preload that script (CPython 3.11 to 3.13 never pass it the path).
    The script's own imports are what cost (``pa``: 0.6 s): imported once here, the child's run
    of the script finds them imported."""
    names = {core.__name__, __name__}
    main = sys.modules.get("__main__")
    for value in list(vars(main).values()) if main is not None else []:
        try:
            name = value.__name__ if isinstance(value, ModuleType) else value.__module__
        except Exception:  # an object without a module, or an odd one: nothing to preload
            continue
        module = sys.modules.get(name) if isinstance(name, str) else None
        if module is not None and getattr(module, "__spec__", None) is not None:
            names.add(module.__name__)
    return sorted(names - {"__main__", "__mp_main__", "builtins"})


def _wait(
    process: multiprocessing.process.BaseProcess, receiver: Connection, wall_seconds: float
) -> tuple[tuple[Any, ...] | None, bool]:
    """The child's outcome (None: it ended without one) and whether the deadline killed it."""
    if receiver.poll(wall_seconds):
        try:
            return receiver.recv(), False
        except EOFError:  # it ended without a word: its exit code says how
            return None, False
    process.kill()
    return None, True


def _result(
    outcome: tuple[Any, ...] | None, exitcode: int | None, killed: bool, limits: Limits
) -> Any:
    if outcome is not None:
        kind = outcome[0]
        if kind == "ok":
            return outcome[1]
        if kind == "refused":
            raise ValidationError(outcome[1], field=outcome[2])
        if kind == "memory":
            raise _refused(f"needed more than {limits.memory_mb} MiB to read")
        raise SandboxCrash(str(outcome[1]))
    if killed:
        raise _refused(f"took longer than {limits.wall_seconds:g} s to read")
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _refused(f"took longer than {limits.cpu_seconds} s (CPU time) to read")
    how = f"exit code {exitcode}"
    if exitcode is not None and exitcode < 0:
        how = f"signal {signal.Signals(-exitcode).name}"
    log.warning("event=calendar_reader_stopped how=%s", how)
    raise _refused(f"cannot be read: its reader stopped ({how})")


def _refused(message: str) -> ValidationError:
    return ValidationError(message, field="feed")


# --- the child's side -------------------------------------------------------------------------


def _child(
    sender: Connection, target: Callable[..., Any], args: tuple[Any, ...], limits: Limits
) -> None:
    """Runs in the child: limit it, run ``target``, send the outcome (module doc)."""
    _limit(resource.RLIMIT_CORE, 0)  # a child killed by its CPU limit leaves no core file
    _limit(resource.RLIMIT_AS, limits.memory_mb * _MIB)
    _limit(resource.RLIMIT_CPU, limits.cpu_seconds, hard=limits.cpu_seconds + 1)
    _last_in_line()
    outcome: tuple[Any, ...]
    try:
        outcome = ("ok", target(*args))
    except ValidationError as err:
        outcome = ("refused", err.message, err.field)
    except MemoryError:
        outcome = ("memory",)
    except Exception as exc:  # a defect: reported, with its type, for the parent to log
        outcome = ("crashed", f"{type(exc).__name__}: {exc}")
    try:
        sender.send(outcome)
    except MemoryError:  # pickling a large result needs memory too
        sender.send(("memory",))
    finally:
        sender.close()


def _last_in_line() -> None:
    """Give this process the CPU only when nothing else wants it: every run of the worker that
    started it comes first, and a feed that burns its CPU allowance takes only what they leave.

    ``SCHED_IDLE`` (Linux): the kernel preempts the child as soon as any normal process wakes
    up. A niceness of 10, tried first, still let two CPU-bound children delay the other users'
    runs by 0.2-0.3 s on a 2-core machine (``tests/chaos/test_hostile_feeds.py``). Where the
    policy does not exist, the largest niceness. Neither can be taken back by an unprivileged
    child."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        os.nice(NICEST)


def _limit(kind: int, soft: int, *, hard: int | None = None) -> None:
    """Lower a limit of this process (never above the hard limit it already has)."""
    _, current = resource.getrlimit(kind)
    wanted = soft if hard is None else hard
    if current != resource.RLIM_INFINITY:
        wanted = min(wanted, current)
        soft = min(soft, current)
    resource.setrlimit(kind, (soft, wanted))


def _parse(data: bytes, timezone: str, now: datetime, horizon_days: int) -> list[core.Occurrence]:
    return core.parse_feed(data, timezone=timezone, now=now, horizon_days=horizon_days)
