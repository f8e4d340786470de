"""A worker moves its start-up objects out of the garbage collector's way (workers/gc_freeze.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from celery import signals

import personal_assistant.workers.tasks  # noqa: F401  # connects the worker's handlers
from personal_assistant.workers import gc_freeze, presence


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # this test process goes on collecting as before


def _receivers(signal: object) -> list[object]:
    return [ref() for _, ref in signal.receivers]  # type: ignore[attr-defined]


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_what_is_alive_is_frozen_and_garbage_is_collected_first(unfrozen: None) -> None:
    kept = [[] for _ in range(1000)]
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    frozen = gc_freeze.freeze_start_up_objects()
    assert frozen == gc.get_freeze_count() >= len(kept)
    assert gone() is None  # collected, not frozen
    assert all(o is not kept for o in gc.get_objects())  # collections no longer look at it


def test_a_worker_freezes_before_its_pool_starts_and_once_ready() -> None:
    assert gc_freeze._worker_init in _receivers(signals.worker_init)
    ready = _receivers(signals.worker_ready)
    # After presence's handler, which builds the runtime the worker keeps.
    assert ready.index(gc_freeze._worker_ready) > ready.index(presence._worker_ready)
