"""``HeldRuns``: the multiset of runs a process holds, which its heartbeat renews."""

from __future__ import annotations

from personal_assistant.health.heartbeat import HeldRuns


def test_a_run_named_by_two_batches_is_held_until_both_let_it_go() -> None:
    held = HeldRuns()
    held.add([1, 2, 3])
    held.add([3, 4])

    held.discard([3, 1])
    assert held.snapshot() == [2, 3, 4]

    held.discard([3])
    assert held.snapshot() == [2, 4]
    assert len(held) == 2


def test_letting_go_of_a_run_not_held_changes_nothing() -> None:
    held = HeldRuns()
    held.add([5])

    held.discard([6, 6, 5, 5])
    held.add([6])

    assert held.snapshot() == [6]


def test_a_run_named_twice_in_one_batch_is_held_twice() -> None:
    held = HeldRuns()
    held.add([7, 7])

    held.discard([7])
    assert held.snapshot() == [7]
    held.discard([7])
    assert held.snapshot() == []
