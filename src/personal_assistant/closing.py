"""Objects that hold a resource until :meth:`AsyncClosing.close`: ``async with`` closes them."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """``async with obj as o:`` gives ``obj`` and awaits ``obj.close()`` on the way out."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
