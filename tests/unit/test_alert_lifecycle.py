"""An alert's episode (pure): each step of the lifecycle, and six hours of a flapping condition
evaluated every 30 s, which never makes a storm of messages."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.alerts.lifecycle import Episode, Step, step
from personal_assistant.core.states import AlertStatus

T0 = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)
OPEN_AFTER = timedelta(seconds=120)
COOLDOWN = timedelta(hours=1)
EVERY = timedelta(seconds=30)
SPAN = timedelta(hours=6)


def pending(started: timedelta = timedelta(0)) -> Episode:
    return Episode(1, AlertStatus.PENDING, T0 + started)


def opened() -> Episode:
    return Episode(1, AlertStatus.OPEN, T0)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("episode", "holds", "at", "last_opened", "expected"),
    [
        (None, True, s(0), None, Step.START),
        (None, False, s(0), None, Step.NOTHING),
        (None, True, s(0), s(-10), Step.START),  # a cooldown does not stop a pending start
        (pending(), True, s(60), None, Step.HOLD),
        (pending(), True, s(119), None, Step.HOLD),
        (pending(), True, s(120), None, Step.OPEN),  # held exactly open_after
        (pending(), True, s(600), None, Step.OPEN),
        (pending(), True, s(600), s(-3000), Step.OPEN),  # last opened exactly a cooldown ago
        (pending(), True, s(600), s(-2999), Step.HOLD),  # in cooldown by one second
        (pending(), True, s(600), s(0), Step.HOLD),
        (pending(), True, s(60), s(-7200), Step.HOLD),  # out of cooldown, not held long enough
        (pending(), False, s(60), None, Step.DROP),
        (pending(), False, s(600), s(-3000), Step.DROP),
        (opened(), True, s(30), s(0), Step.HOLD),
        (opened(), True, s(7200), s(0), Step.HOLD),  # open: never told twice
        (opened(), False, s(30), s(0), Step.RESOLVE),
        (opened(), False, s(30), None, Step.RESOLVE),
    ],
)
def test_step(
    episode: Episode | None,
    holds: bool,
    at: timedelta,
    last_opened: timedelta | None,
    expected: Step,
) -> None:
    decided = step(
        episode,
        holds,
        T0 + at,
        open_after=OPEN_AFTER,
        cooldown=COOLDOWN,
        last_opened_at=None if last_opened is None else T0 + last_opened,
    )
    assert decided is expected


def test_open_after_zero_opens_at_once() -> None:
    assert (
        step(
            pending(),
            True,
            T0,
            open_after=timedelta(0),
            cooldown=COOLDOWN,
            last_opened_at=None,
        )
        is Step.OPEN
    )


@dataclass
class Driver:
    """Applies :func:`step` as the evaluator does: a pending episode is started, then stepped
    again at the same instant; records every message told."""

    episode: Episode | None = None
    last_opened: datetime | None = None
    told: list[tuple[Step, datetime]] = field(default_factory=list)
    next_id: int = 1

    def evaluate(self, holds: bool, now: datetime) -> None:
        decided = self._step(holds, now)
        if decided is Step.START:
            self.episode = Episode(self.next_id, AlertStatus.PENDING, now)
            self.next_id += 1
            decided = self._step(True, now)
        if decided is Step.OPEN:
            assert self.episode is not None
            self.episode = Episode(self.episode.id, AlertStatus.OPEN, self.episode.started_at)
            self.last_opened = now
            self.told.append((Step.OPEN, now))
        elif decided is Step.RESOLVE:
            self.episode = None
            self.told.append((Step.RESOLVE, now))
        elif decided is Step.DROP:
            self.episode = None

    def _step(self, holds: bool, now: datetime) -> Step:
        return step(
            self.episode,
            holds,
            now,
            open_after=OPEN_AFTER,
            cooldown=COOLDOWN,
            last_opened_at=self.last_opened,
        )


def simulate(condition: Callable[[int], bool]) -> tuple[list[bool], list[tuple[Step, datetime]]]:
    """Six hours of evaluations every 30 s; ``condition(i)``: does it hold at the i-th."""
    driver = Driver()
    count = int(SPAN / EVERY)
    seen = [condition(i) for i in range(count)]
    for i, holds in enumerate(seen):
        driver.evaluate(holds, T0 + i * EVERY)
    return seen, driver.told


def check_no_storm(seen: list[bool], told: list[tuple[Step, datetime]]) -> None:
    """At most one opening per cooldown, each resolve after one opening, and an opening only
    once the condition has held, at every evaluation, for ``open_after``."""
    kinds = [kind for kind, _ in told]
    assert kinds == [Step.OPEN, Step.RESOLVE] * (len(kinds) // 2) + [Step.OPEN] * (len(kinds) % 2)
    openings = [at for kind, at in told if kind is Step.OPEN]
    for earlier, later in itertools.pairwise(openings):
        assert later - earlier >= COOLDOWN
    assert len(openings) <= -(-SPAN // COOLDOWN)
    for at in openings:
        index = int((at - T0) / EVERY)
        streak = 0
        while index - streak >= 0 and seen[index - streak]:
            streak += 1
        assert streak >= 1 and (streak - 1) * EVERY >= OPEN_AFTER, at
    for (_, before), (kind, at) in itertools.pairwise(told):
        if kind is Step.RESOLVE:
            assert not seen[int((at - T0) / EVERY)]
            assert at > before


def test_a_condition_alternating_every_evaluation_is_never_told() -> None:
    seen, told = simulate(lambda i: i % 2 == 0)
    check_no_storm(seen, told)
    assert told == []


def test_a_condition_that_holds_for_good_opens_once_and_never_resolves() -> None:
    seen, told = simulate(lambda i: True)
    check_no_storm(seen, told)
    assert told == [(Step.OPEN, T0 + OPEN_AFTER)]


def test_holding_five_minutes_in_six_opens_once_an_hour() -> None:
    """Holds 5 min, clears 1 min: opens at 120 s, resolves at 300 s; then each new episode
    waits pending for the cooldown, so one opening and one resolve per hour."""
    seen, told = simulate(lambda i: i % 12 < 10)
    check_no_storm(seen, told)
    openings = [at - T0 for kind, at in told if kind is Step.OPEN]
    resolves = [at - T0 for kind, at in told if kind is Step.RESOLVE]
    assert openings == [OPEN_AFTER + k * COOLDOWN for k in range(6)]
    assert resolves == [s(300) + k * COOLDOWN for k in range(6)]


@pytest.mark.parametrize(("seed", "p"), [(1, 0.5), (7, 0.8), (42, 0.9), (2026, 0.97)])
def test_a_randomly_flapping_condition_never_makes_a_storm(seed: int, p: float) -> None:
    rand = random.Random(seed)
    seen, told = simulate(lambda i: rand.random() < p)
    check_no_storm(seen, told)
    assert any(kind is Step.OPEN for kind, _ in told)  # the run did reach an opening
