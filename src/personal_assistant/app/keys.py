"""The API keys operations of the façade: a user's keys of the HTTP API, and who a key is.

A key is shown once, by :meth:`Keys.create`; afterwards only its prefix is (``pa_<id>``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from personal_assistant.app._base import Part
from personal_assistant.auth import store, tokens
from personal_assistant.auth.store import KeyInfo, NewKey
from personal_assistant.database.models import User
from personal_assistant.errors import ValidationError

__all__ = ["NAME_MAX", "KeyInfo", "Keys", "NewKey", "key_name"]

NAME_MAX = 64


def key_name(value: object) -> str:
    """A key's name: 1 to :data:`NAME_MAX` printable characters, surrounding spaces removed."""
    if not isinstance(value, str):
        raise ValidationError("must be text", field="name")
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise ValidationError(f"must be 1 to {NAME_MAX} characters (got {len(name)})", field="name")
    if not name.isprintable():
        raise ValidationError(
            "must be printable characters only (no control, format or line-break character)",
            field="name",
        )
    return name


class Keys(Part):
    """Create, list and revoke a user's API keys; tell whose a key is."""

    async def create(self, owner_id: int, name: str) -> NewKey:
        """A new key for the user; ``NewKey.token`` is the key, which is not stored."""
        checked = key_name(name)
        async with self.engine.begin() as conn:
            return await store.create(conn, owner_id, checked, now=self.clock())

    async def list_for(self, owner_id: int) -> list[KeyInfo]:
        """The user's keys, revoked ones included, oldest first."""
        async with self.engine.connect() as conn:
            return await store.list_for(conn, owner_id)

    async def revoke(self, owner_id: int, key_id: int) -> KeyInfo:
        """Revoke the user's key (again: no change); not the user's: not found (``key_id``)."""
        async with self.engine.begin() as conn:
            return await store.revoke(conn, owner_id, key_id, now=self.clock())

    async def authenticate(self, token: str) -> User:
        """The user whose un-revoked key ``token`` is, else an AuthenticationError that does
        not say why. A malformed key is refused before any connection is opened."""
        if tokens.parse(token) is None:
            raise store.refused()
        async with self.engine.begin() as conn:
            user_id = await store.authenticate(conn, token, self.clock())
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                user = await session.get(User, user_id)
        if user is None:  # deleted meanwhile (its keys go with it)
            raise store.refused()
        return user
