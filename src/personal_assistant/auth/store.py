"""Database operations on API keys (``api_keys``): create, list, revoke, authenticate.

A key is made here and returned once (:class:`NewKey`); the row keeps its prefix and hash
(:mod:`personal_assistant.auth.tokens`), never the key. :func:`authenticate` refuses every
key it cannot accept with the same :class:`~personal_assistant.errors.AuthenticationError`:
malformed, unknown, wrong secret or revoked are not told apart.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from personal_assistant.auth import tokens
from personal_assistant.database.models import ApiKey, User
from personal_assistant.errors import AuthenticationError, ConflictError, NotFoundError
from personal_assistant.tasks.inputs import record_id

#: ``last_used_at`` is written at most this often: not a write per request.
LAST_USED_EVERY = timedelta(minutes=1)
#: New ids drawn when a new key's id is taken (a chance of about n / 36**8 each time).
_ATTEMPTS = 3


@dataclass(frozen=True)
class KeyInfo:
    """A key as it may be shown: never the key itself."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    """A key just made: ``token`` is the key, shown this once (and never in a repr)."""

    key: KeyInfo
    token: str = field(repr=False)


#: Typed loosely: select() has typed overloads for fewer columns than these.
_COLUMNS: tuple[Any, ...] = (
    ApiKey.id,
    ApiKey.name,
    ApiKey.prefix,
    ApiKey.created_at,
    ApiKey.last_used_at,
    ApiKey.revoked_at,
)


def refused() -> AuthenticationError:
    """The one error of every key refused, whatever the reason."""
    return AuthenticationError("invalid or revoked API key", field="Authorization")


async def create(conn: AsyncConnection, user_id: int, name: str, *, now: datetime) -> NewKey:
    """A new key named ``name`` (already checked) for the user; its row holds no key."""
    if await conn.scalar(select(User.id).where(User.id == user_id)) is None:
        raise NotFoundError(f"user {user_id} not found", field="user_id")
    for _ in range(_ATTEMPTS):
        made = tokens.new_token()
        try:
            async with conn.begin_nested():
                key_id = await conn.scalar(
                    insert(ApiKey)
                    .values(
                        user_id=user_id,
                        name=name,
                        prefix=made.prefix,
                        token_hash=made.token_hash,
                        created_at=now,
                    )
                    .returning(ApiKey.id)
                )
        except IntegrityError:
            continue  # another key has this id, by chance: draw again
        assert key_id is not None  # INSERT ... RETURNING gives the row's id
        return NewKey(KeyInfo(key_id, name, made.prefix, now, None, None), made.token)
    raise ConflictError("could not give the key an id of its own: try again", field="name")


async def list_for(conn: AsyncConnection, user_id: int) -> list[KeyInfo]:
    """The user's keys, revoked ones included, oldest first."""
    rows = await conn.execute(
        select(*_COLUMNS).where(ApiKey.user_id == user_id).order_by(ApiKey.id)
    )
    return [KeyInfo(*row) for row in rows]


async def revoke(conn: AsyncConnection, user_id: int, key_id: int, *, now: datetime) -> KeyInfo:
    """Revoke the user's key ``key_id`` (again: nothing changes); another user's key, or no
    key, is not found (field ``key_id``)."""
    known = record_id(key_id, "key_id")
    if known is None:
        raise NotFoundError("API key not found (the id is beyond 64 bits)", field="key_id")
    mine = (ApiKey.id == known, ApiKey.user_id == user_id)
    await conn.execute(
        update(ApiKey).where(*mine, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
    )
    row = (await conn.execute(select(*_COLUMNS).where(*mine))).first()
    if row is None:
        raise NotFoundError(f"API key {known} not found", field="key_id")
    return KeyInfo(*row)


async def authenticate(conn: AsyncConnection, token: str, now: datetime) -> int:
    """The id of the user whose un-revoked key ``token`` is; every failure is the same
    AuthenticationError (field ``Authorization``). Notes the use at most once a minute."""
    parsed = tokens.parse(token)
    if parsed is None:
        raise refused()
    prefix, _secret = parsed
    digest = tokens.hash_token(token)
    row = (
        await conn.execute(
            select(ApiKey.id, ApiKey.user_id, ApiKey.token_hash, ApiKey.last_used_at).where(
                ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise refused()
    stale = now - LAST_USED_EVERY
    if row.last_used_at is None or row.last_used_at <= stale:
        # Compare-and-set: of concurrent requests, one writes.
        await conn.execute(
            update(ApiKey)
            .where(
                ApiKey.id == row.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= stale),
            )
            .values(last_used_at=now)
        )
    return int(row.user_id)
