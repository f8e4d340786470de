"""Fair shares of the workers: which owed runs are sent now, which wait, which are skipped.

The broker is first in, first out and knows nothing of users: with Bob's 1,000 runs queued,
Alice's one run waited 74 s instead of 2.5 s behind them. Message priorities would not fix it
and differ per broker (emulated on Redis, where 0 is the highest; the opposite on RabbitMQ;
none on the embedded SQLite transport). So fairness is decided where the data lives: the
scheduler sends a run to the broker only within its owner's share, and the rest wait in the
database, as rows, costing nothing while they wait.

* **A cap per user** (``USER_DISPATCH_LIMIT``; 0: none). At most that many runs of a user are
  *open*: in the broker or running (``queued`` and published, or ``running``). A run beyond it
  is recorded unpublished (``published_at`` NULL) and sent when the user's earlier runs finish.
  New runs, runs asked for now and retries (the reaper's, a failure's, a rate-limit deferral's)
  all go through it. Alice's run then waits behind at most the cap of each busy user, however
  long their backlogs.
* **Round robin.** Owed runs are sent in rounds: every user's oldest, then every user's second
  oldest, and so on (:func:`round_robin`), so a user with one run is served before the 101st
  run of a user with thousands, even when one dispatch cannot send them all.
* **Runs per hour** (``MAX_RUNS_PER_HOUR``; 0: none): how many runs of a user are sent in any
  hour. A scheduled firing beyond it is recorded ``skipped``, with the reason on the run
  (:data:`OVER_HOUR_REASON`), when it falls due. Waiting would be unsound there: a firing held
  for up to an hour is long past ``MISFIRE_GRACE``, where the task's catch-up policy already
  calls it missed, and a user whose schedules fire faster than the quota would pile up a
  backlog without end, each firing later than the one before it, so that every one of their
  runs came late. A run that is already queued (asked for with ``run_now``, or a firing
  admitted earlier and waiting for the cap) waits instead, until the hour allows: it was asked
  for explicitly or already accepted, and admission counts such waiting runs against the quota
  (:func:`share` with ``at_claim=True``), so they stay within one hour's worth. Retries are
  never skipped: a retry is the same run, counted when it was first sent.

The counts are read by each scheduler before it decides: schedulers deciding for the same user
at the same instant may together send up to the cap each (a soft cap; one scheduler is usual).
A run whose owner is unknown (``user_id`` NULL: a row written outside this package) is not
limited. Everything here is pure: the store (:mod:`fair_store`) reads the counts and owed runs,
:class:`~personal_assistant.runs.scheduler.TaskScheduler` applies the result.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

#: The window ``MAX_RUNS_PER_HOUR`` counts over.
HOUR = timedelta(hours=1)

OVER_HOUR_REASON = (
    "skipped: its owner reached MAX_RUNS_PER_HOUR ({limit} runs sent in the last hour) when it "
    "fell due"
)

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Limits:
    """``USER_DISPATCH_LIMIT`` and ``MAX_RUNS_PER_HOUR``; 0 turns either off."""

    cap: int = 0
    per_hour: int = 0

    def __post_init__(self) -> None:
        if self.cap < 0 or self.per_hour < 0:
            raise ValueError("limits must be 0 (off) or positive")

    @property
    def active(self) -> bool:
        """Off (both 0): every run is sent at once, as before fair dispatch existed."""
        return self.cap > 0 or self.per_hour > 0


class Owed(NamedTuple):
    """A run that may be sent: ``key`` names it (a run id, or a position in a batch). A tuple:
    a claim makes one per new run."""

    key: int
    user_id: int | None
    #: Never sent before (a new firing, a ``run_now`` run); a retry was, and is never skipped.
    fresh: bool = True


@dataclass(frozen=True)
class Usage:
    """Per user, what the limits count; a user absent from a mapping counts 0."""

    #: Runs in the broker or running (``queued`` and published, or ``running``).
    open: Mapping[int, int]
    #: Runs sent in the last hour; at a claim, plus the user's runs waiting unsent.
    hour: Mapping[int, int]


@dataclass(frozen=True)
class Shares:
    send: tuple[int, ...]
    hold: tuple[int, ...]  # wait unsent, as data
    skip: tuple[int, ...]  # recorded skipped, with :data:`OVER_HOUR_REASON`
    #: The usage of the users these decisions counted, once they are carried out (for
    #: :class:`Tally`); the others' is unchanged.
    after: Usage


def share(owed: Sequence[Owed], usage: Usage, limits: Limits, *, at_claim: bool) -> Shares:
    """Decide, in ``owed``'s order, which runs are sent now, held, or skipped.

    A run whose owner has used the hour is skipped at a claim (a new firing) and held
    otherwise; retries never count against the hour. A run whose owner has ``cap`` runs open
    is held. At a claim, a held run counts against the hour too (waiting runs are counted in
    ``usage.hour`` there), so that admitted runs never exceed one hour's quota.
    """
    # Only the users decided for are copied: a tally holds every owner of a burst (10,000 in
    # the claim benchmark), and copying it for each batch cost more than the decisions.
    opened: dict[int, int] = {}
    used: dict[int, int] = {}
    send: list[int] = []
    hold: list[int] = []
    skip: list[int] = []
    for run in owed:
        user = run.user_id
        if user is None:
            send.append(run.key)
            continue
        if user not in opened:
            opened[user] = usage.open.get(user, 0)
            used[user] = usage.hour.get(user, 0)
        if limits.per_hour and run.fresh and used[user] >= limits.per_hour:
            (skip if at_claim else hold).append(run.key)
            continue
        if limits.cap and opened[user] >= limits.cap:
            hold.append(run.key)
            if at_claim and run.fresh:
                used[user] += 1
            continue
        send.append(run.key)
        opened[user] += 1
        if run.fresh:
            used[user] += 1
    return Shares(tuple(send), tuple(hold), tuple(skip), Usage(opened, used))


def fits(counts: Mapping[int | None, int], usage: Usage, limits: Limits) -> bool:
    """Whether :func:`share` would send every one of ``counts`` new firings per owner at a
    claim: no owner would go past the cap or the hour's quota. The common case, decided
    without a decision per run (a burst is a thousand runs a batch)."""
    for user, count in counts.items():
        if user is None:
            continue
        if limits.cap and usage.open.get(user, 0) + count > limits.cap:
            return False
        if limits.per_hour and usage.hour.get(user, 0) + count > limits.per_hour:
            return False
    return True


@dataclass
class Tally:
    """Usage read once per user, then kept current by the decisions taken since.

    A burst is claimed in many batches, and every batch names mostly the same users: each
    of the 1,000 users of a 100,000-task burst would be counted a hundred times. A tally counts
    a user once a burst and adds what the burst's claims send and hold. It does not see runs
    that finish meanwhile (it overcounts: a run is held a little longer, the safe side) nor
    what other schedulers send (the cap is soft anyway). A new tally is made for each burst,
    and at least every ``BURST_TALLY_S`` of a long one (``runs/scheduler.py``).
    """

    open: dict[int, int] = field(default_factory=dict)
    hour: dict[int, int] = field(default_factory=dict)
    known: set[int] = field(default_factory=set)

    def missing(self, users: Iterable[int]) -> set[int]:
        return {user for user in users if user not in self.known}

    def learn(self, users: Iterable[int], usage: Usage) -> None:
        """Take freshly read counts for ``users`` (absent from ``usage``: 0), unless already
        known: a concurrent claim of the same tick may have read them and decided since."""
        for user in users:
            if user in self.known:
                continue
            self.known.add(user)
            self.open[user] = usage.open.get(user, 0)
            self.hour[user] = usage.hour.get(user, 0)

    def usage(self) -> Usage:
        return Usage(self.open, self.hour)

    def keep(self, shares: Shares) -> None:
        """Carry out ``shares``' decisions (made from :meth:`usage`)."""
        self.open.update(shares.after.open)
        self.hour.update(shares.after.hour)

    def send(self, counts: Mapping[int | None, int]) -> None:
        """Count ``counts`` new firings per owner as sent (they :func:`fits`)."""
        for user, count in counts.items():
            if user is not None:
                self.open[user] = self.open.get(user, 0) + count
                self.hour[user] = self.hour.get(user, 0) + count


def round_robin(items: Iterable[tuple[K, int | None, datetime]]) -> list[K]:
    """Keys of ``(key, user_id, since)`` items in rounds: each user's oldest first, then each
    user's second oldest, and so on; within a round, the oldest first. ``since`` is when the
    run became owed (its ``lease_expires_at``); ties keep the input order.
    """
    by_user: dict[int | None, list[tuple[datetime, int, K]]] = {}
    for position, (key, user, since) in enumerate(items):
        by_user.setdefault(user, []).append((since, position, key))
    ranked: list[tuple[int, datetime, int, K]] = []
    for runs in by_user.values():
        runs.sort(key=lambda item: (item[0], item[1]))
        ranked.extend((rank, since, pos, key) for rank, (since, pos, key) in enumerate(runs))
    ranked.sort(key=lambda item: (item[0], item[1], item[2]))
    return [key for _, _, _, key in ranked]


def over_hour_reason(limits: Limits) -> str:
    return OVER_HOUR_REASON.format(limit=limits.per_hour)
