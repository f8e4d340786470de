"""The pure rule of fair dispatch: who is sent now, who waits, who is skipped, and in what order."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from personal_assistant.runs.fair_dispatch import (
    Limits,
    Owed,
    Shares,
    Tally,
    Usage,
    fits,
    over_hour_reason,
    round_robin,
    share,
)

BOB, ALICE, CY = 1, 2, 3
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NONE = Usage(open={}, hour={})


def _owed(*users: int | None, fresh: bool = True) -> list[Owed]:
    return [Owed(key, user, fresh) for key, user in enumerate(users)]


def _decided(shares: Shares) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    return shares.send, shares.hold, shares.skip


@pytest.mark.parametrize(
    ("users", "usage", "limits", "at_claim", "expected"),
    [
        # Off: everything is sent, whatever the counts say.
        ([BOB] * 5, Usage({BOB: 99}, {BOB: 99}), Limits(), True, ((0, 1, 2, 3, 4), (), ())),
        # The cap counts what is already open.
        ([BOB] * 5, NONE, Limits(cap=3), True, ((0, 1, 2), (3, 4), ())),
        ([BOB] * 5, Usage({BOB: 2}, {}), Limits(cap=3), False, ((0,), (1, 2, 3, 4), ())),
        ([BOB] * 2, Usage({BOB: 7}, {}), Limits(cap=3), False, ((), (0, 1), ())),
        # Per user: Bob's backlog does not hold Alice back.
        ([BOB, BOB, BOB, ALICE], Usage({BOB: 3}, {}), Limits(cap=3), False, ((3,), (0, 1, 2), ())),
        ([BOB, ALICE, BOB, CY, BOB], NONE, Limits(cap=1), True, ((0, 1, 3), (2, 4), ())),
        # The hour: new firings beyond it are skipped at a claim, held otherwise.
        ([BOB] * 4, Usage({}, {BOB: 1}), Limits(per_hour=3), True, ((0, 1), (), (2, 3))),
        ([BOB] * 4, Usage({}, {BOB: 1}), Limits(per_hour=3), False, ((0, 1), (2, 3), ())),
        ([BOB, ALICE], Usage({}, {BOB: 3}), Limits(per_hour=3), True, ((1,), (), (0,))),
        # At a claim, a run held by the cap is admitted: it counts against the hour.
        ([BOB] * 5, NONE, Limits(cap=2, per_hour=4), True, ((0, 1), (2, 3), (4,))),
        # At a dispatch, held runs were counted when admitted: only sending counts.
        ([BOB] * 5, NONE, Limits(cap=2, per_hour=4), False, ((0, 1), (2, 3, 4), ())),
        # An unknown owner is not limited.
        ([None] * 3, Usage({}, {}), Limits(cap=1, per_hour=1), True, ((0, 1, 2), (), ())),
    ],
)
def test_share(
    users: list[int | None],
    usage: Usage,
    limits: Limits,
    at_claim: bool,
    expected: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]],
) -> None:
    assert _decided(share(_owed(*users), usage, limits, at_claim=at_claim)) == expected


def test_retries_count_against_the_cap_but_are_never_skipped_for_the_hour() -> None:
    owed = [Owed(0, BOB, fresh=False), Owed(1, BOB, fresh=False), Owed(2, BOB)]
    limits = Limits(cap=1, per_hour=1)
    assert _decided(share(owed, Usage({}, {BOB: 5}), limits, at_claim=False)) == ((0,), (1, 2), ())
    assert _decided(share(owed, Usage({BOB: 1}, {}), limits, at_claim=False)) == ((), (0, 1, 2), ())


def test_a_run_sent_counts_toward_the_next_decisions() -> None:
    # Two users, cap 2, hour 3: Bob's third is held for the cap; Alice is unaffected.
    owed = _owed(BOB, ALICE, BOB, ALICE, BOB)
    got = share(owed, Usage({}, {ALICE: 1}), Limits(cap=2, per_hour=3), at_claim=False)
    assert _decided(got) == ((0, 1, 2, 3), (4,), ())
    assert got.after == Usage({BOB: 2, ALICE: 2}, {BOB: 2, ALICE: 3})


def test_a_tally_counts_each_user_once_and_keeps_the_decisions() -> None:
    tally = Tally()
    limits = Limits(cap=3, per_hour=5)
    assert tally.missing([BOB, ALICE]) == {BOB, ALICE}
    tally.learn([BOB, ALICE], Usage({BOB: 2}, {BOB: 2}))
    first = share(_owed(BOB, BOB, ALICE), tally.usage(), limits, at_claim=True)
    tally.keep(first)
    assert _decided(first) == ((0, 2), (1,), ())
    # The next batch of the tick: nobody is read again, and Bob's held run counts for the hour.
    assert tally.missing([BOB, ALICE, CY]) == {CY}
    tally.learn([CY], Usage({}, {}))
    tally.learn([BOB], Usage({}, {}))  # read concurrently: what the tick decided wins
    second = share(_owed(BOB, BOB, ALICE, CY), tally.usage(), limits, at_claim=True)
    # Bob is at the cap (3 open) and at 4 of 5 for the hour: one more held, then skipped.
    assert _decided(second) == ((2, 3), (0,), (1,))
    tally.keep(second)
    assert tally.usage() == Usage({BOB: 3, ALICE: 2, CY: 1}, {BOB: 5, ALICE: 2, CY: 1})


@pytest.mark.parametrize("limits", [Limits(cap=2), Limits(per_hour=3), Limits(cap=2, per_hour=3)])
def test_fits_says_what_share_decides_and_a_tally_counts_the_same(limits: Limits) -> None:
    """The claim's shortcut: when every new firing fits, ``share`` is not asked run by run."""
    usages = [Usage({}, {}), Usage({BOB: 1}, {BOB: 1}), Usage({BOB: 2}, {ALICE: 3})]
    batches = [[], [BOB], [BOB, BOB], [BOB, ALICE, None], [ALICE] * 3, [None] * 5]
    for usage, users in itertools.product(usages, batches):
        decided = share(_owed(*users), usage, limits, at_claim=True)
        counts = Counter(users)
        assert fits(counts, usage, limits) == (decided.hold == decided.skip == ()), users
        if fits(counts, usage, limits):
            shortcut, by_share = Tally(), Tally()
            for tally in (shortcut, by_share):
                tally.learn([BOB, ALICE], usage)
            shortcut.send(counts)
            by_share.keep(decided)
            assert shortcut.usage() == by_share.usage()


def test_limits_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match="0 \\(off\\) or positive"):
        Limits(cap=-1)
    assert not Limits().active
    assert Limits(cap=1).active and Limits(per_hour=1).active


def test_reason_names_the_setting_and_the_limit() -> None:
    assert over_hour_reason(Limits(per_hour=40)).startswith(
        "skipped: its owner reached MAX_RUNS_PER_HOUR (40 runs"
    )


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], []),
        # Bob's thousand-run backlog is oldest, Alice's one run newest: she is in round one.
        (
            [("b1", BOB, _at(1)), ("b2", BOB, _at(2)), ("b3", BOB, _at(3)), ("a1", ALICE, _at(9))],
            ["b1", "a1", "b2", "b3"],
        ),
        # Within a round, the oldest first; input order does not matter.
        (
            [("a2", ALICE, _at(5)), ("c1", CY, _at(3)), ("a1", ALICE, _at(4)), ("b1", BOB, _at(6))],
            ["c1", "a1", "b1", "a2"],
        ),
        # Ties keep the input order.
        ([("x", BOB, _at(1)), ("y", ALICE, _at(1)), ("z", BOB, _at(1))], ["x", "y", "z"]),
        # Unknown owners share one round-robin slot.
        ([("n1", None, _at(1)), ("n2", None, _at(2)), ("b1", BOB, _at(3))], ["n1", "b1", "n2"]),
    ],
)
def test_round_robin(items: list[tuple[str, int | None, datetime]], expected: list[str]) -> None:
    assert round_robin(items) == expected


def test_round_robin_then_share_serves_everyone_once_before_anyone_twice() -> None:
    backlog = [(f"b{i}", BOB, _at(i)) for i in range(1000)]
    order = round_robin([*backlog, ("a", ALICE, _at(5000)), ("c", CY, _at(6000))])
    assert order[:4] == ["b0", "a", "c", "b1"]
    keys = {key: i for i, key in enumerate(order)}
    users = {key: user for key, user, _ in [*backlog, ("a", ALICE, T0), ("c", CY, T0)]}
    owed = [Owed(keys[k], users[k]) for k in order]
    got = share(owed, Usage({BOB: 99}, {}), Limits(cap=100), at_claim=False)
    assert got.send == (0, 1, 2)  # Bob's oldest, Alice's, Cy's; Bob's 999 others wait
    assert len(got.hold) == 999
