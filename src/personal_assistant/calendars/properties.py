"""A feed's properties as the calendar core reads and quotes them, whatever the feed wrote (pure).

A value the parser could not read is :data:`UNREADABLE` (:func:`read`), never an exception; a
text becomes one printable line (:func:`line`) or printable lines (:func:`block`), trimmed; an
event's UID is bounded, and derived when there is none (:func:`uid_of`). A refusal
(:func:`refused`) is a :class:`~personal_assistant.errors.ValidationError` naming ``feed``, one
printable line, that quotes a value as the feed wrote it (:func:`raw`, :func:`short_uid`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import date, datetime, time
from typing import Any

from personal_assistant.errors import ValidationError
from personal_assistant.safe_text import safe_text

__all__ = [
    "DESCRIPTION_MAX",
    "RAW_MAX",
    "SUMMARY_MAX",
    "UID_MAX",
    "UNREADABLE",
    "as_list",
    "block",
    "is_moment",
    "line",
    "raw",
    "read",
    "refused",
    "short_uid",
    "trim",
    "uid_of",
    "wall",
]
#: At most this many characters of an event's summary, of its description and place, of a UID.
SUMMARY_MAX = 200
DESCRIPTION_MAX = 10_000
UID_MAX = 512
#: How much of a value a message quotes.
RAW_MAX = 60
#: What :func:`read` returns for a value the parser could not read.
UNREADABLE = object()


def refused(message: str) -> ValidationError:
    """The feed's refusal: ``message`` (what is wrong, in the feed's terms) made one safe line."""
    return ValidationError(safe_text(message), field="feed")


def read(prop: object, attribute: str) -> object:
    """``prop.<attribute>``, or :data:`UNREADABLE` if the parser could not read the value."""
    try:
        return getattr(prop, attribute)
    except Exception:  # a broken property raises on access (icalendar 7), of several types
        return UNREADABLE


def raw(prop: object) -> str:
    """The property's value as the feed wrote it, short and printable, for a message."""
    try:  # a value the parser could not read is kept as the text it was (a str)
        text = str(prop) if isinstance(prop, str) else prop.to_ical()  # type: ignore[attr-defined]
    except Exception:
        text = b""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return safe_text(text, RAW_MAX)


def as_list(value: object) -> list[Any]:
    """A property the feed may write once or several times, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def uid_of(component: Any) -> str:
    """The component's UID, one line of at most :data:`UID_MAX` characters (a longer one is
    hashed), or one derived from its start and summary when it has none."""
    value = component.get("UID")
    if isinstance(value, list):  # several UIDs: refused by the checks, named by the first
        value = value[0] if value else None
    uid = line(value, 10 * UID_MAX)
    if not uid:  # RFC 5545 requires one; derive a stable one from what identifies the event
        start = component.get("DTSTART")
        seed = f"{start.to_ical().decode() if start is not None else ''}|{component.get('SUMMARY')}"
        return "no-uid-" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    if len(uid) > UID_MAX:
        return "sha256-" + hashlib.sha256(uid.encode()).hexdigest()
    return uid


def short_uid(uid: str) -> str:
    """A uid as a message shows it."""
    return safe_text(uid, RAW_MAX)


def _printable(text: str, keep: str = "") -> str:
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in ("Cc", "Cs"))


def line(value: object, limit: int) -> str:
    """One line of text: whitespace collapsed, control characters dropped, trimmed."""
    if value is None:
        return ""
    return trim(_printable(" ".join(str(value).split())), limit)


def block(value: object, limit: int) -> str:
    """Text that keeps its lines: control characters but newlines and tabs dropped, trimmed."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return trim(_printable(text, keep="\n\t").strip(), limit)


def trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def wall(value: date | datetime) -> datetime:
    """A date or date-time as a naive wall-clock time (a date: midnight)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0))
    return value.replace(tzinfo=None)


def is_moment(value: object) -> bool:
    return isinstance(value, date)  # a datetime is a date too; a time is neither
