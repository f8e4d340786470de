"""Content decoding with the decoded size bounded while it is produced (pure).

A limit checked on the decoded chunks an HTTP client hands out comes too late: the client
decodes a whole received chunk at once, and 268 bytes gzipped three times
(``Content-Encoding: gzip, gzip, gzip``) decoded to 2.19 GB in one step before the 5 MB limit
of a feed was looked at. :class:`BoundedDecoder` takes the raw bytes and undoes each coding
with :func:`zlib.decompressobj`, asking each step for at most one byte more than the room left
(``max_length``): no layer ever produces more than ``limit + 1`` bytes in all, so memory stays
a small multiple of the limit whatever the ratio. The codings are ``gzip`` (``x-gzip``),
``deflate`` (zlib-wrapped, or raw as some servers send it) and ``identity``, at most
:data:`MAX_CODINGS` of them; anything else is refused, never passed through undecoded.
"""

from __future__ import annotations

import zlib

#: More codings than this on one response is refused (each one is bounded anyway).
MAX_CODINGS = 3
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class TooLarge(Exception):
    """A layer's decoded output went past the limit."""


class UnsupportedEncoding(Exception):
    """A coding this decoder does not undo, too many codings, or corrupt compressed data."""


def codings(content_encoding: str) -> list[str]:
    """The codings of a ``Content-Encoding`` value, in the order they were applied (pure)."""
    found = [c.strip().lower() for c in content_encoding.split(",")]
    found = [c for c in found if c and c != "identity"]
    if len(found) > MAX_CODINGS or any(c not in _WBITS for c in found):
        raise UnsupportedEncoding("unsupported content encoding")
    return found


class _Layer:
    """Undoes one coding; its total output never exceeds ``limit`` (``TooLarge`` instead)."""

    def __init__(self, coding: str, limit: int) -> None:
        self._limit = limit
        self._produced = 0
        self._inflate = zlib.decompressobj(_WBITS[coding])
        #: ``deflate`` is zlib-wrapped by the standard, raw from some servers: until the first
        #: output shows which, the input is kept to be read again as raw deflate.
        self._undecided: bytes | None = b"" if coding == "deflate" else None

    def feed(self, data: bytes) -> bytes:
        room = self._limit - self._produced
        try:
            if self._undecided is not None:
                self._undecided += data
            out = self._inflate.decompress(data, room + 1)
        except zlib.error:
            if self._undecided is None:
                raise UnsupportedEncoding("corrupt compressed data") from None
            seen, self._undecided = self._undecided, None
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                out = self._inflate.decompress(seen, room + 1)
            except zlib.error:
                raise UnsupportedEncoding("corrupt compressed data") from None
        if out:
            self._undecided = None
        # Output below ``room + 1`` means all the input was consumed; reaching it means the
        # layer would produce more than the limit allows.
        if len(out) > room:
            raise TooLarge
        self._produced += len(out)
        return out


class BoundedDecoder:
    """Decodes a response body of ``content_encoding`` chunk by chunk, at most ``limit``
    bytes out of every layer (module doc)."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        self._layers = [_Layer(c, limit) for c in reversed(codings(content_encoding))]
        self._limit = limit
        self.size = 0

    def feed(self, raw: bytes) -> bytes:
        """The decoded bytes of the next raw chunk; raises TooLarge or UnsupportedEncoding."""
        data = raw
        for layer in self._layers:
            if not data:
                return b""
            data = layer.feed(data)
        self.size += len(data)
        if self.size > self._limit:
            raise TooLarge
        return data
