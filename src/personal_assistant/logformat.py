"""JSON log lines (``LOG_FORMAT=json``): one object per record, so a log shipper needs no parser.

Each line is one JSON object::

    {"ts": "2026-11-29T08:23:56.308Z", "level": "INFO",
     "logger": "personal_assistant.runs.processor", "pid": 7661,
     "message": "event=run_started run_id=1 task_id=1 attempt=1",
     "event": "run_started", "run_id": 1, "task_id": 1, "attempt": 1}

(shown here on four lines).

- ``ts`` is UTC with milliseconds; ``message`` is the whole formatted message, always there.
- A message of the house's shape, ``event=<name> key=value ...``, also gives ``event`` and each
  key as a field of its own. A value is a number when the whole of it is one (JSON's grammar:
  ``007`` and ``1e999`` stay text), ``None``/``True``/``False`` are ``null``/``true``/``false``,
  a flat list that is valid JSON (``run_ids=[1, 2]``) is a list, a quoted value (``%r`` of a
  string, or ``json.dumps``) is its unquoted text; any other value is text, and runs up to the
  next `` key=`` (``detail=leases no longer renewed``). Text before the first key is only in
  ``message``.
- A key that would overwrite a field of the record (``ts``, ``level``, ``logger``, ``pid``,
  ``message``, ``event``, ``exc_info``, ``stack_info``) or an earlier key of the same line is
  written with ``field_`` in front (``level=high`` gives ``"field_level": "high"``).
- An exception is ``exc_info``, its formatted traceback; ``stack_info`` likewise.
- Non-ASCII stays as it is (UTF-8); line breaks inside values are escaped, including those
  only Unicode calls line breaks, so one record is always one line.

Redaction happens before: :class:`~personal_assistant.redaction.RedactingFilter` on the handler
rewrites the record's message and exception text, which this formatter reads. Pure: standard
library only, no I/O.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from typing import TypeAlias

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | None

#: The record's own fields: a message's key of one of these names gets :data:`PREFIX`.
RESERVED = frozenset({"ts", "level", "logger", "pid", "message", "event", "exc_info", "stack_info"})
PREFIX = "field_"

_EVENT = re.compile(r"event=([A-Za-z0-9_.:-]+)(?=\s|$)")
_KEY = re.compile(r"\s([A-Za-z_][A-Za-z0-9_]*)=")  # one space: no backtracking on a run
_QUOTED = re.compile(r"""(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")(?=\s|$)""")
_LIST = re.compile(r"\[[^\[\]\n]*\](?=\s|$)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]+")
_WORDS: dict[str, JsonValue] = {"None": None, "True": True, "False": False}
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_ESCAPED = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
#: Characters JSON leaves as they are that :meth:`str.splitlines` still breaks lines at.
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module doc)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        doc: dict[str, JsonValue] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": message,
        }
        parsed = parse_event(message)
        if parsed is not None:
            name, pairs = parsed
            doc["event"] = name
            for key, value in pairs:
                doc[_free_key(doc, key)] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc_info"] = record.exc_text
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False).translate(_LINE_BREAKS)


def parse_event(message: str) -> tuple[str, list[tuple[str, JsonValue]]] | None:
    """``(event name, [(key, value), ...])`` of an ``event=<name> key=value ...`` message.

    ``None`` when ``message`` does not start with ``event=<name>``. Keys come in their order,
    repeats included.
    """
    head = _EVENT.match(message)
    if head is None:
        return None
    pairs: list[tuple[str, JsonValue]] = []
    pos = head.end()
    while (key := _KEY.search(message, pos)) is not None:
        value, pos = _value(message, key.end())
        pairs.append((key.group(1), value))
    return head.group(1), pairs


def _free_key(doc: dict[str, JsonValue], key: str) -> str:
    while key in doc or key in RESERVED:
        key = PREFIX + key
    return key


def _timestamp(record: logging.LogRecord) -> str:
    """``2026-11-29T08:23:56.308Z``: as :class:`logging.Formatter` splits seconds and msecs."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _value(message: str, start: int) -> tuple[JsonValue, int]:
    """The value starting at ``start`` and where it ends."""
    quoted = _QUOTED.match(message, start)
    if quoted is not None:
        return _unquote(quoted.group()), quoted.end()
    listed = _LIST.match(message, start)
    if listed is not None:
        return _list(listed.group()), listed.end()
    following = _KEY.search(message, start)
    end = following.start() if following is not None else len(message)
    return _scalar(message[start:end].strip()), end


def _scalar(text: str) -> JsonValue:
    if text in _WORDS:
        return _WORDS[text]
    if not _NUMBER.fullmatch(text):
        return text
    try:
        number = int(text) if _INTEGER.fullmatch(text) else float(text)
    except ValueError:  # an integer past Python's digit limit
        return text
    return number if math.isfinite(number) else text


def _list(text: str) -> JsonValue:
    """A flat JSON list of finite numbers, strings, booleans and nulls; else ``text``."""
    try:
        value = json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except ValueError:
        return text
    return value if isinstance(value, list) else text


def _refuse(constant: str) -> float:
    raise ValueError(constant)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _unquote(text: str) -> str:
    """The text of a Python (``%r``) or JSON string literal; ``text`` itself if it cannot be
    written as UTF-8 (a lone surrogate)."""
    value: str | None = None
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
    if value is None:
        value = _ESCAPE.sub(_unescape, text[1:-1])
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return text[1:-1]
    return value


def _unescape(match: re.Match[str]) -> str:
    escape = match.group()
    if escape[1] in "xuU" and len(escape) > 2:
        code = int(escape[2:], 16)
        return chr(code) if code <= 0x10FFFF else escape
    return _ESCAPED.get(escape[1], escape)
