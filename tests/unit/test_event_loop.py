"""The runtime's loops run on uvloop where it is installed, on asyncio's loop elsewhere."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from personal_assistant.workers.runtime import LoopThread, new_event_loop


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_the_worker_s_loop_is_uvloop_s() -> None:
    thread = LoopThread(name="pa-test-loop")
    try:
        assert isinstance(thread.run(_running_loop(), timeout=10), uvloop.Loop)
    finally:
        thread.stop()


def test_without_uvloop_the_loop_is_asyncio_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows: the import fails
    loop = new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert loop.run_until_complete(_running_loop()) is loop
    finally:
        loop.close()
