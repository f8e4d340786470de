"""Text from outside made safe to store, log and print: :func:`safe_text`.

An error message can quote what a server or a file sent: a NUL byte (PostgreSQL refuses it in
a ``text`` column, and it corrupts log files), escape sequences that repaint a terminal, line
breaks that forge a log line, bidirectional overrides that reorder what is shown, lone
surrogates that cannot be encoded. Pure; imports nothing of the package.

Three renderings, by where the text goes:

- :func:`safe_text` for stored and logged errors: one bounded line;
- :func:`terminal_text` for what ``pa`` prints in tables: escape sequences (``ESC [ 2 J``,
  ``ESC ] 0 ; title BEL``, their 8-bit forms) are removed whole, line breaks become spaces, other
  controls and format characters (bidi overrides among them) are dropped: a stored agent answer
  cannot clear the screen, retitle the window or reorder what is shown;
- :func:`escape_json_text` for ``--json`` output and for data quoted in a prompt: the same
  characters as ``\\uXXXX`` escapes, so that the decoded value is the stored one, unchanged.

:data:`BIDI_CONTROLS` are the embeddings, overrides and isolates (U+202A-U+202E,
U+2066-U+2069) that free text people type is refused with (``task_inputs.text``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "BIDI_CONTROLS",
    "ERROR_MAX",
    "escape_json_text",
    "safe_text",
    "terminal_text",
    "without_bidi",
]

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


#: Bidirectional embeddings, overrides and isolates: they reorder how text is displayed.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: What a terminal acts on: controls, format characters, surrogates, line separators.
_TERMINAL_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_BREAKS = frozenset("\n\r\t\v\f\x85\u2028\u2029")
#: ECMA-48 sequences, 7-bit (ESC ...) and 8-bit (C1), removed whole: CSI, OSC and the other
#: string commands (up to BEL or ST, or the end of the text), then any other ESC + one char.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)


def terminal_text(value: object) -> str:
    """``value`` as one line a terminal only displays (module doc); ordinary spaces are kept."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the usual case: nothing to remove
        return text
    text = _ESCAPE_SEQUENCE.sub("", text)
    out: list[str] = []
    for ch in text:
        if ch in _BREAKS:
            if not out or out[-1] != " ":
                out.append(" ")
        elif unicodedata.category(ch) not in _TERMINAL_UNSAFE:
            out.append(ch)
    return "".join(out)


def escape_json_text(text: str, *, markup: bool = False) -> str:
    """JSON text (from ``json.dumps``) with what a terminal acts on written as ``\\uXXXX``
    escapes: controls, format characters, surrogates, line separators; with ``markup``,
    ``<`` and ``>`` too (data quoted between markers cannot close them). All of these occur
    only inside JSON strings, so the decoded value is unchanged."""
    escaped = _MARKUP if markup else frozenset()
    if text.isascii():  # the usual case: json.dumps escaped the controls but DEL
        return "".join(_json_escape(ch) if ch in escaped else ch for ch in text).replace(
            "\x7f", "\\u007f"
        )
    return "".join(_json_escape(ch) if _escaped(ch, escaped) else ch for ch in text)


_MARKUP = frozenset("<>")


def _escaped(ch: str, also: frozenset[str]) -> bool:
    # A newline outside strings is json.dumps' indentation; inside strings it is escaped.
    return ch != "\n" and (ch in also or unicodedata.category(ch) in _TERMINAL_UNSAFE)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code > 0xFFFF:  # astral: a UTF-16 surrogate pair, as JSON writes them
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def without_bidi(text: str) -> str:
    """``text`` without :data:`BIDI_CONTROLS` (for text from outside that is kept anyway)."""
    return "".join(ch for ch in text if ch not in BIDI_CONTROLS)
