"""A database that cannot be reached, read or migrated, told as one line naming ``DATABASE_URL``.

:func:`explained` turns SQLAlchemy's errors into :class:`UnusableDatabase`, a
:class:`~personal_assistant.errors.ConfigurationError`, so that callers above the database
(the façade, the CLI) never see a driver's exception or traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from personal_assistant.errors import ConfigurationError
from personal_assistant.redaction import mask_url

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

__all__ = ["UnusableDatabase", "explained", "first_line"]


class UnusableDatabase(ConfigurationError):
    """``<doing> <masked url>: <reason>``; ``reason`` is the driver's first line."""

    def __init__(self, doing: str, url: str, reason: str) -> None:
        super().__init__(f"{doing} {mask_url(url)}: {reason}", field="DATABASE_URL")
        self.reason = reason


def first_line(exc: SQLAlchemyError) -> str:
    """The first line of the driver's message (of SQLAlchemy's, without one)."""
    cause = getattr(exc, "orig", None) or exc
    return str(cause).splitlines()[0] if str(cause) else type(cause).__name__


@contextmanager
def explained(doing: str, url: str) -> Iterator[None]:
    """Raise :class:`UnusableDatabase` (``doing`` the database at ``url``) for a SQLAlchemy error.

    >>> with explained("cannot migrate", url):
    ...     migrate.upgrade(url)
    """
    from sqlalchemy.exc import SQLAlchemyError  # not at import: the plain reads go without it

    try:
        yield
    except SQLAlchemyError as exc:
        raise UnusableDatabase(doing, url, first_line(exc)) from None
