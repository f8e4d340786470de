"""The keys that seal channel URLs at rest, and where they come from.

A channel's URL is an Apprise URL: it holds the SMTP password, the webhook token, the chat
bot's key. The database stores it sealed (a Fernet token: AES-128-CBC and HMAC-SHA256, so a
changed token is refused, never opened as something else) beside a masked copy for display;
the URL is opened only by the transport that sends through it. A copy of the database, a
backup or a replica shows no credential without the key.

Where the keys come from (:func:`channel_cipher`):

* ``CHANNEL_KEYS`` (or ``CHANNEL_KEYS_FILE``, a Docker secret): comma-separated Fernet keys.
  The first seals; every one opens (``MultiFernet``). To rotate: put a new key first, run
  ``pa channel rotate-key`` (every URL re-sealed with it), then drop the old key.
* Unset on the embedded default (SQLite): ``var/channel.key``, made once with mode 0600. One
  SQLite file means one machine, so every process of the installation reads the same key.
* Unset with ``DATABASE_URL`` naming a server: refused with a :class:`ConfigurationError`
  naming ``CHANNEL_KEYS`` by whatever needs the key (adding, testing or rotating a channel, a
  migration with URLs to seal). A key made up per machine would be wrong there: every machine
  sharing the database would seal with its own key and could not open the others' URLs.

A worker without a key (:func:`optional_cipher`) still runs everything else and says so in
its log; its channel deliveries fail as transient, for a worker with the key to retry. A URL
that none of the keys opens fails for good with :data:`UNREADABLE`: no later attempt, on any
worker with the same keys, could send it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from personal_assistant.config import FERNET_KEY_HINT, Settings, is_fernet_key
from personal_assistant.errors import ConfigurationError
from personal_assistant.private_files import FILE_MODE, private_dir

log = logging.getLogger(__name__)

#: The key file of the embedded default, in ``var/``.
KEY_FILE = "channel.key"
#: Why a sealed URL cannot be used: the reason a channel is broken with.
UNREADABLE = "cannot decrypt: key not in CHANNEL_KEYS"


class UnknownKeyError(ConfigurationError):
    """No key of the cipher opens this sealed URL (or it is not a sealed URL)."""

    def __init__(self) -> None:
        super().__init__(UNREADABLE)


class ChannelCipher:
    """Seals and opens channel URLs with Fernet keys: the first seals, every one opens."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ConfigurationError("no key given", field="CHANNEL_KEYS")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self._count = len(keys)

    def __repr__(self) -> str:
        return f"ChannelCipher(keys={self._count})"

    def seal(self, url: str) -> str:
        return self._fernet.encrypt(url.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """The URL; :class:`UnknownKeyError` if no key opens ``sealed``."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, UnicodeError):
            raise UnknownKeyError() from None

    def rotate(self, sealed: str) -> str:
        """``sealed`` sealed again with the first key; :class:`UnknownKeyError` as for open."""
        try:
            return self._fernet.rotate(sealed.encode()).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UnknownKeyError() from None


def channel_cipher(settings: Settings, *, embedded: bool | None = None) -> ChannelCipher:
    """The cipher of these settings (module doc); ``embedded``: the database is SQLite.

    ``embedded`` defaults to the settings' own database; a migration passes the one it runs on.
    """
    if settings.channel_keys_raw is not None:
        return ChannelCipher(split_keys(settings.channel_keys_raw.get_secret_value()))
    if settings.embedded if embedded is None else embedded:
        return ChannelCipher([read_or_create_key(settings.var_dir / KEY_FILE)])
    raise ConfigurationError(
        "is required when DATABASE_URL names a database server: every process that shares "
        f"the database needs the same key. Make one with {FERNET_KEY_HINT}",
        field="CHANNEL_KEYS",
    )


def optional_cipher(settings: Settings) -> ChannelCipher | None:
    """The cipher, or None (logged) when there is no key: for a worker, which has other work."""
    try:
        return channel_cipher(settings)
    except ConfigurationError as exc:
        log.warning("event=channel_keys_missing error=%r", exc.message)
        return None


def split_keys(text: str) -> list[str]:
    """The comma-separated keys of ``CHANNEL_KEYS`` (checked by the settings)."""
    return [item.strip() for item in text.split(",")]


def read_or_create_key(path: Path) -> bytes:
    """The key in ``path``; made first if there is none (mode 0600, never replaced).

    Processes that start together may all find no key: each writes a new one to a file of its
    own (``O_EXCL``, 0600) and links it to ``path``, which only the first link creates, so
    all of them read the same, complete key.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        # Another process may have published its key first: that one is the key.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if not is_fernet_key(key.decode("ascii", errors="replace")):
        raise ConfigurationError(
            f"CHANNEL_KEYS is unset and {path} holds no Fernet key: restore it from a backup "
            "(channel URLs sealed with it cannot be opened without it)",
            field=KEY_FILE,
        )
    return key
