"""A process stopped in the middle of a transaction, for tests of what its locks hold up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest


def freeze_after(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str
) -> tuple[asyncio.Event, asyncio.Event]:
    """Make ``module.name``, a coroutine function, stop after its first call until resumed.

    Returns ``(entered, resume)``: ``entered`` is set once the first caller has stopped (its
    transaction open, its rows locked, as a SIGSTOPped process leaves them); setting
    ``resume`` lets it go on. Later calls pass straight through.
    """
    entered, resume = asyncio.Event(), asyncio.Event()
    real = getattr(module, name)

    async def then_freeze(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if not entered.is_set():
            entered.set()
            await resume.wait()  # the process is stopped: it sends nothing more
        return result

    monkeypatch.setattr(module, name, then_freeze)
    return entered, resume
