"""The idempotency keys operations of the façade: claim a key, store its answer, release it
(:mod:`personal_assistant.auth.idempotency`), each in a short transaction of its own."""

from __future__ import annotations

from personal_assistant.app._base import Part
from personal_assistant.auth import idempotency as store
from personal_assistant.auth.idempotency import Answer

__all__ = ["Answer", "Idempotency"]


class Idempotency(Part):
    """A caller's idempotency keys: one answer per key, kept a day."""

    async def claim(self, user_id: int, key: str, request_hash: str) -> Answer | None:
        """None: answer the request, then :meth:`finish` (or :meth:`release` if it fails);
        else the answer the key already has."""
        async with self.engine.begin() as conn:
            return await store.claim(conn, user_id, key, request_hash, now=self.clock())

    async def finish(self, user_id: int, key: str, answer: Answer) -> None:
        async with self.engine.begin() as conn:
            await store.finish(conn, user_id, key, answer)

    async def release(self, user_id: int, key: str) -> None:
        async with self.engine.begin() as conn:
            await store.release(conn, user_id, key)
