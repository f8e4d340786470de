"""What every part of the façade holds: the engine it shares, the settings, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.config import Settings


@dataclass(frozen=True, repr=False)
class Part:
    """One noun's operations; each method opens and closes its own transaction."""

    engine: AsyncEngine
    settings: Settings
    clock: Callable[[], datetime]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
