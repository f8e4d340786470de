"""Text from outside made safe to store, log and print: :func:`safe_text`.

An error message can quote what a server or a file sent: a NUL byte (PostgreSQL refuses it in
a ``text`` column, and it corrupts log files), escape sequences that repaint a terminal, line
breaks that forge a log line, bidirectional overrides that reorder what is shown, lone
surrogates that cannot be encoded. Pure; imports nothing of the package.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ERROR_MAX", "safe_text"]

#: The default bound of a stored or logged error text, in characters.
ERROR_MAX = 500
#: Control, format, surrogate, private-use, unassigned, line and paragraph separators.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ELLIPSIS = "…"


def safe_text(value: object, limit: int = ERROR_MAX) -> str:
    """``value`` as one printable line of at most ``limit`` characters.

    Every unsafe character (see the module doc; NUL, tabs and line breaks included) becomes a
    space, runs of spaces become one, the ends are trimmed, and a text longer than ``limit``
    is cut and ends with ``…``.
    """
    text = value if isinstance(value, str) else str(value)
    cleaned = "".join(" " if unicodedata.category(ch) in _UNSAFE else ch for ch in text)
    line = " ".join(cleaned.split())
    if len(line) <= limit:
        return line
    return line[: max(limit - 1, 0)].rstrip() + _ELLIPSIS
