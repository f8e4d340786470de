"""Redaction: the one place that decides what of a URL or a credential may be shown.

Secrets travel inside URLs (a database or Redis password in the userinfo or in ``?password=``,
the token of a private calendar link in its path or query, an Apprise channel whose host and
path *are* the bot token) and inside text that mentions them: our own error messages, and the
log lines of libraries we do not control (httpx logs every URL it fetches, Celery and kombu
their broker, Apprise the channel it loaded). So there is one masking, used for everything
shown, and one :class:`RedactingFilter` on every log handler the package sets up:

- :func:`mask_url` masks one URL: the userinfo password (and a user name that looks like a
  token), query values whose key looks secret (``password``, ``token``, ``key``, ``sig``...) or
  whose value looks like a token, path segments that look like tokens (``private-<hex>``, long
  random strings) on web URLs, and every part of the host and path of a service URL whose
  scheme is not a plain host (``tgram://``, ``slack://``: Apprise puts credentials there);
- :func:`redact` masks every URL found in free text, ``Bearer``/``Basic`` values, and
  ``password=...``-like pairs (JSON and header forms included);
- :func:`scrub` also removes the known secrets of one URL from a text, wherever they appear.

Masked parts become ``****`` and nothing of them is kept (no first or last character), so
masked text is masked again unchanged. This module is a low layer: it imports nothing of the
package, does no I/O, and is cheap enough to run on every log record.
"""

from __future__ import annotations

import logging
import re
import traceback
from urllib.parse import urlsplit

MASK = "****"

#: Web and webhook schemes: the host is a host, the path may hide a token.
_WEB_SCHEMES = frozenset(
    {"http", "https", "webcal", "webcals", "ws", "wss", "ftp", "ftps", "sftp"}
    | {"mailto", "mailtos", "json", "jsons", "form", "forms", "xml", "xmls"}
)
#: Databases, brokers and files: the path is a database name or a file, never a token.
_SERVICE_SCHEMES = frozenset(
    {"postgresql", "postgres", "psycopg", "psycopg2", "asyncpg", "mysql", "mariadb", "sqlite"}
    | {"aiosqlite", "pysqlite", "redis", "rediss", "valkey", "amqp", "amqps", "pyamqp"}
    | {"librabbitmq", "sqla", "db", "file", "unix", "socket", "memory", "mongodb", "rpc"}
    | {"transport"}  # kombu shows a custom transport as ``module:Transport://host``
)
#: Query keys whose values are secrets (searched for anywhere in the key, any case).
_SECRET_KEY = re.compile(
    r"pass|pwd|token|secret|key|auth|sig|sid|prv|priv|cred|session|ticket|^code$", re.IGNORECASE
)
#: A URL in free text: scheme, ``://``, then anything up to a space, a quote or a bracket.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]+")
_URL_TAIL = ".,;:!?)]}"
#: ``password=x``, ``"api_key": "x"``, ``Authorization: Bearer x``: the key ends with the word.
_PAIR = re.compile(
    r"(?P<key>\b[\w.-]*?(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey"
    r"|access[_-]?key|private[_-]?key|authorization|credentials?|cookie|\bauth))"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(?P<scheme>bearer|basic|token|digest)\s+)?"
    r"(?P<value>[^\s\"'&,;)}\]]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(?P<scheme>bearer)\s+(?P<value>[A-Za-z0-9._~+/=-]+)", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9_~-]+")
_PART = re.compile(r"[^/:@]+")
_STARS = re.compile(r"\*+")
#: Secrets shorter than this are too common in text for :func:`scrub` to replace everywhere.
_SCRUB_MIN = 6
#: Set on a record once redacted.
_DONE = "_pa_redacted"


def mask_url(url: str, *, every_query_value: bool = False) -> str:
    """``url`` with its secrets replaced by ``****`` (pure; see the module doc).

    ``every_query_value``: mask every query value, not only secret-looking ones (a private
    feed's query is the subscription's secret, whatever its keys are called).
    """
    return _mask(url, every_query_value)[0]


def url_secrets(url: str, *, every_query_value: bool = False) -> list[str]:
    """The substrings of ``url`` that :func:`mask_url` hides, longest first."""
    hidden = {s for s in _mask(url, every_query_value)[1] if len(s) >= _SCRUB_MIN}
    return sorted(hidden, key=len, reverse=True)


def scrub(text: str, url: str, *, every_query_value: bool = False) -> str:
    """``text`` (an error message, a log line) with ``url`` and its secrets masked."""
    if url:
        text = text.replace(url, mask_url(url, every_query_value=every_query_value))
    for secret in url_secrets(url, every_query_value=every_query_value):
        text = text.replace(secret, MASK)
    return redact(text)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An error as evidence: the driver's own message (not SQLAlchemy's wrapper and its link),
    on one line, with any URL's or key's secret masked, bounded."""
    text = redact(str(getattr(exc, "orig", None) or exc))
    return " ".join(text.split())[:limit] or type(exc).__name__


def redact(text: str) -> str:
    """``text`` with every URL masked and every credential-looking value replaced."""
    if not text:
        return text
    if "://" in text:
        text = _URL.sub(_mask_found_url, text)
    text = _PAIR.sub(_mask_pair, text)
    return _BEARER.sub(_mask_bearer, text)


class RedactingFilter(logging.Filter):
    """Redacts a record's message, arguments, exception and stack before any handler sees it.

    Installed on handlers (not loggers), so it sees the records that libraries' loggers
    propagate too. The message is formatted once, redacted, and stored with no arguments left;
    the exception text is formatted and redacted into ``exc_text``, which formatters reuse.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get(_DONE):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format: leave it to the handler to report
            return True
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.__dict__[_DONE] = True  # other handlers of this record skip the work
        return True


def install(handler: logging.Handler) -> None:
    """Add a :class:`RedactingFilter` to ``handler`` unless it has one (idempotent)."""
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())


# --- the masking ---------------------------------------------------------------------------------


def _mask(url: str, every_query_value: bool) -> tuple[str, list[str]]:
    """``(masked url, the substrings hidden)``."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return MASK, [url] if url else []
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return f"{scheme}://{MASK}", [rest]
    hidden: list[str] = []
    kind = _kind(scheme)
    if kind == "opaque":
        netloc = _PART.sub(lambda m: _hide(m.group(), hidden), parts.netloc)
        path = _PART.sub(lambda m: _hide(m.group(), hidden), parts.path)
    else:
        netloc = _mask_netloc(parts.netloc, hidden)
        path = parts.path
        if kind == "web":
            path = "/".join(_mask_segment(s, hidden) for s in parts.path.split("/"))
    loose = kind != "service"
    query = _mask_query(parts.query, hidden, every_query_value=every_query_value, loose=loose)
    fragment = _mask_query(parts.fragment, hidden, every_query_value=False, loose=loose)
    masked = f"{scheme}://{netloc}{path}"
    if query or "?" in rest.partition("#")[0]:
        masked += f"?{query}"
    if fragment or "#" in rest:
        masked += f"#{fragment}"
    return masked, hidden


def _kind(scheme: str) -> str:
    names = set(scheme.lower().split("+"))
    if names & _SERVICE_SCHEMES:
        return "service"
    if names & _WEB_SCHEMES:
        return "web"
    return "opaque"


def _mask_netloc(netloc: str, hidden: list[str]) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, password = userinfo.partition(":")
    if colon:
        if password and not _STARS.fullmatch(password):
            hidden.append(password)
            password = MASK
        return f"{user}:{password}@{hostport}"
    if _looks_secret(user):  # a token as the user name (``https://<key>@host``)
        hidden.append(user)
        user = MASK
    return f"{user}@{hostport}"


def _mask_segment(segment: str, hidden: list[str]) -> str:
    lowered = segment.lower()
    private = lowered.startswith(("private-", "private_")) and len(segment) > len("private-")
    if private or _looks_secret(segment):
        hidden.append(segment)
        return MASK
    return segment


def _mask_query(query: str, hidden: list[str], *, every_query_value: bool, loose: bool) -> str:
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        if eq:
            secret = bool(_SECRET_KEY.search(key)) or every_query_value
            if value and value != MASK and (secret or (loose and _looks_secret(value))):
                hidden.append(value)
                value = MASK
        elif key and key != MASK and (every_query_value or (loose and _looks_secret(key))):
            hidden.append(key)
            key = MASK
        pairs.append(f"{key}{eq}{value}")
    return "&".join(pairs)


def _looks_secret(part: str) -> bool:
    """Random-looking: 32 characters or more, or a 16+ character word of letters and digits."""
    return len(part) >= 32 or (
        len(part) >= 16 and bool(_TOKEN.fullmatch(part)) and any(ch.isdigit() for ch in part)
    )


def _hide(part: str, hidden: list[str]) -> str:
    if part != MASK:
        hidden.append(part)
    return MASK


def _mask_found_url(match: re.Match[str]) -> str:
    found = match.group()
    url = found.rstrip(_URL_TAIL)
    return mask_url(url) + found[len(url) :]


def _mask_pair(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    shown = f"{scheme} " if scheme else ""
    value = match.group("value")
    tail = value[len(value.rstrip(_URL_TAIL)) :] if value.rstrip(_URL_TAIL) else ""
    return f"{match.group('key')}{match.group('sep')}{shown}{MASK}{tail}"


def _mask_bearer(match: re.Match[str]) -> str:
    return f"{match.group('scheme')} {MASK}"
