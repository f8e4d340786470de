"""Validation of what people give us for a task or a user (pure).

Every error is a :class:`~personal_assistant.errors.ValidationError` naming the field. Free text
(titles, instructions, names) refuses control characters and the bidirectional embeddings,
overrides and isolates (U+202A-U+202E, U+2066-U+2069): ``invoice`` + U+202E + ``fdp.exe`` shows as
``invoiceexe.pdf``, in a notification as in ``pa task list``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from personal_assistant.core.next_run import validate_for_creation, with_interval_anchor
from personal_assistant.core.schedule_json import parse_schedule
from personal_assistant.core.schedule_kinds import (
    Cron,
    Daily,
    Interval,
    Monthly,
    Once,
    Schedule,
    Weekly,
)
from personal_assistant.core.states import CatchUp, TaskType
from personal_assistant.errors import NotFoundError, ScheduleError, ValidationError
from personal_assistant.notifications.channels import channel_name
from personal_assistant.safe_text import BIDI_CONTROLS

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
NAME_MAX = 200
CONTEXT_MAX_BYTES = 64_000
MAX_RETRIES_LIMIT = 20


def text(
    value: object, field: str, *, max_len: int, required: bool = True, multiline: bool = False
) -> str:
    if not isinstance(value, str):
        raise ValidationError("must be text", field=field)
    cleaned = value.strip()
    if required and not cleaned:
        raise ValidationError("must not be empty", field=field)
    if len(cleaned) > max_len:
        raise ValidationError(
            f"must be at most {max_len} characters (got {len(cleaned)})", field=field
        )
    allowed = {"\n", "\t"} if multiline else set()
    for ch in cleaned:
        if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs"):
            raise ValidationError(f"contains a control character {ch!r}", field=field)
        if ch in BIDI_CONTROLS:
            raise ValidationError(
                f"contains the bidirectional control U+{ord(ch):04X}, which can make text show "
                "in a misleading order",
                field=field,
            )
    return cleaned


def title(value: object) -> str:
    """A task's title: one line, required."""
    return text(value, "title", max_len=TITLE_MAX)


def description(value: object) -> str:
    """A task's instruction: optional, several lines."""
    return text(value, "description", max_len=DESCRIPTION_MAX, required=False, multiline=True)


def timezone(value: object, field: str = "timezone") -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError("must be an IANA time zone such as Europe/Paris", field=field)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a directory
        raise ValidationError(f"unknown time zone {value!r}", field=field) from None
    return value


def task_type(value: object) -> str:
    return choice(value, TaskType, "task_type")


def catch_up(value: object) -> str:
    return choice(value, CatchUp, "catch_up")


def choice(value: object, allowed: type[StrEnum], field: str) -> str:
    """One of the values of ``allowed``; anything else (text or not) is refused, naming them."""
    if isinstance(value, str):
        for member in allowed:
            if member.value == value:
                return member.value
    names = ", ".join(member.value for member in allowed)
    raise ValidationError(f"must be one of {names}", field=field)


def channels(value: Iterable[object] | None) -> list[str]:
    if value is None:
        return ["in_app"]
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("must be a list of channel names", field="notification_channels")
    result: list[str] = []
    for item in value:
        # Well-formed names only; which names the owner may use is checked with the database
        # (channel_store.check_task_channels): in_app, email/sms/webhook, the owner's channels.
        name = channel_name(item, "notification_channels")
        if name not in result:
            result.append(name)
    if not result:
        raise ValidationError("must name at least one channel", field="notification_channels")
    return result


def ai_context(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON object that PostgreSQL and the agent's prompt can hold.

    Strict JSON (no NaN or Infinity, which PostgreSQL's ``json`` refuses), valid Unicode (no
    lone surrogates, which cannot be encoded), and no NUL character in any key or string: it
    would reach the prompt and the agent's answer, and a ``text`` column refuses it.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("must be a JSON object", field="ai_context")
    try:
        encoded = json.dumps(dict(value), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"must be JSON-serialisable: {exc}", field="ai_context") from None
    try:
        size = len(encoded.encode())
    except UnicodeEncodeError:
        raise ValidationError(
            "must be valid Unicode text (it contains a lone surrogate)", field="ai_context"
        ) from None
    if size > CONTEXT_MAX_BYTES:
        raise ValidationError(
            f"must be at most {CONTEXT_MAX_BYTES} bytes as JSON", field="ai_context"
        )
    loaded: dict[str, Any] = json.loads(encoded)
    if any("\x00" in text for text in _strings(loaded)):
        raise ValidationError("contains a NUL character", field="ai_context")
    return loaded


def _strings(value: object) -> Iterator[str]:
    """Every key and string in a loaded JSON value, walked without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            yield from item.keys()
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def max_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("must be a whole number", field="max_retries")
    if not 0 <= value <= MAX_RETRIES_LIMIT:
        raise ValidationError(f"must be between 0 and {MAX_RETRIES_LIMIT}", field="max_retries")
    return value


def email(value: object) -> str | None:
    if value is None or value == "":
        return None
    cleaned = text(value, "email", max_len=320)
    local, _, domain = cleaned.partition("@")
    if not local or "." not in domain or " " in cleaned:
        raise ValidationError("is not an email address", field="email")
    return cleaned


def phone(value: object) -> str | None:
    if value is None or value == "":
        return None
    cleaned = text(value, "phone", max_len=32)
    digits = cleaned.removeprefix("+").replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        raise ValidationError("must be a phone number such as +33612345678", field="phone")
    return cleaned


# --- numbers and ids: what every public method of the manager checks first ----------------------

#: The range of an id column: PostgreSQL ``bigint`` and SQLite ``INTEGER`` are 64-bit, signed.
ID_MIN, ID_MAX = -(2**63), 2**63 - 1


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole(value: object, field: str, *, low: int, high: int) -> int:
    """A whole number in ``[low, high]``, as a plain ``int``.

    A bool is refused though it is an ``int``, and so is anything else that is not an ``int``
    (``"1"``, ``1.0``): nothing is converted silently. Bounds are compared, never tested with
    ``in range(...)``: that is a linear scan for anything but an exact ``int``.
    """
    if not _is_whole(value):
        raise ValidationError("must be a whole number", field=field)
    assert isinstance(value, int)
    if not low <= value <= high:
        raise ValidationError(f"must be between {low} and {high}", field=field)
    return int(value)


def record_id(value: object, field: str) -> int | None:
    """An id as a plain ``int``, or None for an integer no row can have (outside the 64-bit
    range of the id columns): the caller reports that as not found. Anything that is not an
    integer is refused, naming ``field``."""
    if not _is_whole(value):
        raise ValidationError("must be a whole number (an id)", field=field)
    assert isinstance(value, int)
    return int(value) if ID_MIN <= value <= ID_MAX else None


def known_id(record_id_: object, what: str) -> int:
    """The id of a ``what`` as a plain ``int``; anything but an integer is a ValidationError
    naming ``{what}_id``.

    An integer outside the database's range names nothing: not found, not a crash (and not
    printed: ``str()`` of a 5,000-digit number raises).
    """
    field = f"{what}_id"
    known = record_id(record_id_, field)
    if known is None:
        raise NotFoundError(f"{what} not found (the id is beyond 64 bits)", field=field)
    return known


def record_ids(value: object, field: str, *, max_len: int) -> list[int]:
    """A list of at most ``max_len`` ids; those no row can have are left out."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError("must be a list of ids", field=field)
    ids: list[int] = []
    for index, item in enumerate(value):
        if index == max_len:
            raise ValidationError(f"must hold at most {max_len} ids", field=field)
        known = record_id(item, f"{field}[{index}]")
        if known is not None:
            ids.append(known)
    return ids


def flag(value: object, field: str) -> bool:
    """True or False, nothing else (``"false"`` is not false)."""
    if not isinstance(value, bool):
        raise ValidationError("must be true or false", field=field)
    return value


def schedule(
    value: Mapping[str, Any] | Schedule, default_tz: str, now: datetime
) -> tuple[Schedule, datetime]:
    """A task's schedule (a mapping in ``default_tz`` unless it names a zone, or a
    :class:`Schedule`) and its first firing after ``now``; a ScheduleError names ``schedule``."""
    parsed: Schedule
    if isinstance(value, Mapping):
        data = dict(value)
        data.setdefault("timezone", default_tz)
        parsed = parse_schedule(data)
    elif isinstance(value, Once | Interval | Daily | Weekly | Monthly | Cron):
        parsed = value
    else:
        raise ScheduleError(
            "must be an object such as {'kind': 'daily', 'times': ['09:00']}", field="schedule"
        )
    parsed = with_interval_anchor(parsed, now)
    return parsed, validate_for_creation(parsed, now)
