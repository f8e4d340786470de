"""API keys as strings (pure): ``pa_<id>_<secret>``, how one is made, parsed and hashed.

The id (8 lowercase letters and digits) is public: it is stored and shown, and finds the key's
row. The secret is ``secrets.token_urlsafe(32)``: 256 random bits, 43 characters. Only the
SHA-256 of the whole key is stored, never the key.

A fast hash is the right one here: a slow one (bcrypt, Argon2) protects guessable passwords,
and 256 random bits cannot be guessed however fast the hash, so a stolen table of hashes gives
nothing back. GitHub's and Stripe's API tokens are stored the same way. SHA-256 also lets the
key be found by its hash, and costs microseconds on every request.

No repr or message here ever shows a key: a key in a log or a traceback is a key given away.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field

#: What every key starts with, so that a leaked one is recognisable (secret scanners).
SCHEME = "pa"
ID_LENGTH = 8
#: A longer string is refused before any other work.
MAX_LENGTH = 200

_ID_ALPHABET = string.ascii_lowercase + string.digits
_KEY = re.compile(rf"({SCHEME}_[a-z0-9]{{{ID_LENGTH}}})_([A-Za-z0-9_-]{{43}})")


@dataclass(frozen=True)
class NewToken:
    """A key just made: the key itself (shown once), its public prefix and its hash."""

    token: str = field(repr=False)
    prefix: str
    token_hash: str = field(repr=False)


def new_token() -> NewToken:
    """A new random key; ``prefix`` is ``pa_<id>``, the part that may be shown."""
    prefix = f"{SCHEME}_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(token, prefix, hash_token(token))


def hash_token(token: str) -> str:
    """The SHA-256 of the key, 64 hex digits (a fast hash: see the module's docstring)."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse(token: object) -> tuple[str, str] | None:
    """``(prefix, secret)`` of a well-formed key, else None: anything that is not a string,
    longer than :data:`MAX_LENGTH` (refused first) or not of the shape ``pa_<id>_<secret>``."""
    if not isinstance(token, str) or len(token) > MAX_LENGTH:
        return None
    match = _KEY.fullmatch(token)
    if match is None:
        return None
    return match.group(1), match.group(2)
