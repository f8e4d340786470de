"""Catch-up after downtime: which due firings of a task to run, which to record as skipped.

A task's stored ``next_run_at`` (``due_at``) may lie far behind ``now`` when the scheduler was
down. The due firings are ``due_at`` and every later firing up to and including ``now``. A
firing is *missed* when it is older than ``now - grace``, otherwise *on time*.

Policies (:data:`CatchUpPolicy`):

* ``skip``: missed firings are recorded as skipped runs; on-time ones run.
* ``once``: exactly one run, for the most recent due firing; the others are recorded skipped.
* ``all``: every due firing runs, but at most ``limit`` runs (the most recent ones); older ones
  are recorded skipped.

Whatever the policy, a plan holds at most ``limit`` runs (``once``: one) and at most ``limit``
skipped records, the most recent ones; older due firings are only counted, in ``dropped``.
The normal case, a single due firing, takes one :func:`next_after` call: that firing runs, even
if late, except under ``skip`` when it is missed.

The work is bounded: at most about ``10 * limit + 10`` firings are computed. When a long outage
has more due firings than that, the scan jumps ahead to the firings just before ``now`` and the
firings jumped over are *estimated* from the mean spacing of those scanned, so ``dropped`` is
then an estimate: exact for intervals and other evenly spaced schedules, possibly several times
off for bunched ones (office hours). The most recent due firing is always found exactly. A
minute-by-minute task down for a year costs a few milliseconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from personal_assistant.core.next_run import next_after
from personal_assistant.core.schedule_kinds import Schedule

__all__ = ["CatchUpPlan", "CatchUpPolicy", "Firing", "plan_due"]

CatchUpPolicy = Literal["skip", "once", "all"]
_POLICIES: tuple[str, ...] = get_args(CatchUpPolicy)
_EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True)
class Firing:
    """One due firing of a task: run it, or (``run=False``) record it as a skipped run."""

    scheduled_for: datetime  # aware UTC
    run: bool


@dataclass(frozen=True)
class CatchUpPlan:
    """What to do about a task's due firings."""

    firings: tuple[Firing, ...]  # oldest first
    next_run_at: datetime | None  # the first firing strictly after now, or None
    dropped: int  # due firings neither run nor recorded (beyond the bounds); may be estimated


def plan_due(
    schedule: Schedule,
    due_at: datetime,
    now: datetime,
    policy: CatchUpPolicy,
    *,
    grace: timedelta,
    limit: int,
) -> CatchUpPlan:
    """Plan the due firings of ``schedule`` from ``due_at`` (its stored next run) up to ``now``.

    ``grace`` is how late a firing may be and still count as on time; ``limit`` (>= 1) bounds
    the runs and, separately, the skipped records of the plan. A ``due_at`` later than ``now``
    yields an empty plan whose ``next_run_at`` is ``due_at``.
    """
    if policy not in _POLICIES:
        raise ValueError(f"unknown catch-up policy {policy!r}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    due_at = due_at.astimezone(UTC)
    if due_at > now:
        return CatchUpPlan((), due_at, 0)
    cutoff = now - grace
    following = next_after(schedule, due_at)
    if following is None or following > now:
        run = policy != "skip" or due_at >= cutoff
        return CatchUpPlan((Firing(due_at, run),), following, 0)

    recent, total, next_run_at = _scan(
        schedule, due_at, following, now, keep=2 * limit, budget=10 * limit + 10
    )
    if policy == "all":
        runs = min(limit, len(recent))
    elif policy == "once":
        runs = 1
    else:
        runs = min(limit, sum(1 for fire in recent if fire >= cutoff))
    split = len(recent) - runs
    skipped = recent[max(0, split - limit) : split]
    firings = tuple(Firing(fire, False) for fire in skipped) + tuple(
        Firing(fire, True) for fire in recent[split:]
    )
    return CatchUpPlan(firings, next_run_at, total - len(firings))


def _scan(
    schedule: Schedule,
    first: datetime,
    second: datetime,
    now: datetime,
    *,
    keep: int,
    budget: int,
) -> tuple[list[datetime], int, datetime | None]:
    """The last ``keep`` due firings (oldest first), how many are due, and the next firing.

    ``first`` and ``second`` are the first two due firings. At most ``budget`` firings are
    scanned: half of it from ``first``; then, if ``now`` is still far, the scan jumps to about
    ``keep`` firings before the last due one and counts those jumped over by their mean spacing.
    Should the second half run out too (a schedule much denser near ``now`` than at first), the
    rest is estimated the same way and the last due firing, found exactly, closes the list.
    """
    recent: deque[datetime] = deque([first], maxlen=keep)
    total = 1
    fire: datetime | None = second
    while fire is not None and fire <= now and total < budget // 2:
        recent.append(fire)
        total += 1
        fire = next_after(schedule, fire)
    if fire is None or fire > now:
        return list(recent), total, fire

    spacing = (recent[-1] - first) / (total - 1)
    resume = _resume_point(schedule, fire, now, spacing * (keep + 1))
    total += (resume - fire) // spacing  # estimated: the firings in [fire, resume)
    fire = resume
    scanned = budget // 2
    while fire is not None and fire <= now and scanned < budget:
        recent.append(fire)
        total += 1
        scanned += 1
        fire = next_after(schedule, fire)
    if fire is not None and fire <= now:  # out of budget: jump to the last due firing
        last = _last_due(schedule, fire, now)
        total += (last - fire) // spacing + 1  # estimated: the firings in [fire, last]
        recent.append(last)
        fire = next_after(schedule, last)
    return list(recent), total, fire


def _resume_point(schedule: Schedule, fire: datetime, now: datetime, width: timedelta) -> datetime:
    """A due firing in [fire, now], about ``width`` of firings before the last due one."""
    target = now - width
    if target <= fire:
        return fire
    landing = next_after(schedule, target)
    if landing is not None and landing <= now:
        return landing
    # no firing in (target, now]: the schedule pauses (nights, weekends); look before the pause
    last = _last_due(schedule, fire, now, empty_after=target)
    target = last - width
    if target <= fire:
        return fire
    landing = next_after(schedule, target)
    assert landing is not None and landing <= last  # `last` itself is a firing after target
    return landing


def _last_due(
    schedule: Schedule, fire: datetime, now: datetime, *, empty_after: datetime | None = None
) -> datetime:
    """The last firing at or before ``now``, given ``fire``, a firing at or before it.

    ``empty_after``, when given, is a point after which no firing is due. Exponential search
    back from ``now``, then bisection down to under a second (firings are at least a second
    apart): about 2 * log2(now - fire in seconds) calls of :func:`next_after`.
    """
    high = now if empty_after is None else empty_after  # no firing in (high, now]
    width = max(now - high, timedelta(seconds=1))
    while True:
        low = max(now - 2 * width, fire - _EPSILON)
        following = next_after(schedule, low)
        if following is not None and following <= now:
            break  # a firing in (low, now]
        high, width = low, 2 * width
    while high - low >= timedelta(seconds=1):
        middle = low + (high - low) / 2
        following = next_after(schedule, middle)
        if following is not None and following <= now:
            low = middle
        else:
            high = middle
    last = next_after(schedule, low)
    assert last is not None and last <= now
    return last
