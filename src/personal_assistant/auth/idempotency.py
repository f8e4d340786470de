"""Database operations on idempotency keys (``idempotency_keys``): claim one, store its answer,
release it.

A create sent with an ``Idempotency-Key`` is made once per caller and key: :func:`claim` inserts
the row (``INSERT ... ON CONFLICT DO NOTHING`` on the primary key ``(user_id, key)``, so of two
concurrent requests one inserts), the caller makes the object, and :func:`finish` stores the
answer in the row. A later claim of the same key gets that answer back (:class:`Answer`);
another request under the same key is refused (422), and a claim whose answer is still being
made is a conflict (409: try again shortly). A claim left unanswered for
:data:`ABANDONED_AFTER` (its process died) may be taken over; a failed request releases its
claim (:func:`release`), so that it can be retried with the same key.

Keys are kept :data:`KEEP` (a day): each claim first deletes the rows older than that, all
users', through the index on ``created_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.database.dialect import dialect_insert
from personal_assistant.database.models import IdempotencyKey
from personal_assistant.errors import ConflictError, ValidationError

__all__ = ["ABANDONED_AFTER", "FIELD", "KEEP", "Answer", "claim", "finish", "release"]

#: How long a key and its answer are kept.
KEEP = timedelta(hours=24)
#: A claim unanswered this long is taken to be abandoned (its server stopped mid-request).
ABANDONED_AFTER = timedelta(minutes=2)
#: The header the errors name.
FIELD = "Idempotency-Key"


@dataclass(frozen=True)
class Answer:
    """The first answer to a key: its status, its JSON body, its ``Location`` if any."""

    status: int
    body: str
    location: str | None = None


async def claim(
    conn: AsyncConnection, user_id: int, key: str, request_hash: str, *, now: datetime
) -> Answer | None:
    """None: the key is the caller's to answer now (then :func:`finish` or :func:`release`);
    else the answer stored for it. Another request under the key is a ValidationError, one still
    being answered a ConflictError (both naming :data:`FIELD`)."""
    await conn.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP))
    inserted = await conn.scalar(
        dialect_insert(conn, IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=request_hash, created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.user_id)
    )
    if inserted is not None:
        return None
    mine = (IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    row = (
        await conn.execute(
            select(
                IdempotencyKey.request_hash,
                IdempotencyKey.status,
                IdempotencyKey.answer,
                IdempotencyKey.location,
            ).where(*mine)
        )
    ).one()
    if row.request_hash != request_hash:
        raise ValidationError(
            "this key was sent with another request: use a new key for a new request",
            field=FIELD,
        )
    if row.status is not None:
        return Answer(int(row.status), str(row.answer or ""), row.location)
    # Compare-and-set: of two requests finding the same abandoned claim, one takes it.
    taken = await conn.execute(
        update(IdempotencyKey)
        .where(
            *mine,
            IdempotencyKey.status.is_(None),
            IdempotencyKey.created_at < now - ABANDONED_AFTER,
        )
        .values(created_at=now)
    )
    if taken.rowcount == 1:
        return None
    raise ConflictError(
        "a request with this key is in progress: send it again once that one is answered",
        field=FIELD,
    )


async def finish(conn: AsyncConnection, user_id: int, key: str, answer: Answer) -> None:
    """Store the answer to a claimed key."""
    await conn.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status=answer.status, answer=answer.body, location=answer.location)
    )


async def release(conn: AsyncConnection, user_id: int, key: str) -> None:
    """Give a claimed key up, unanswered (its request failed): it may be sent again."""
    await conn.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.status.is_(None),
        )
    )
