"""A message a worker cannot use is refused and logged without its content; consuming goes on.

Whoever can write to the broker can put anything in a queue, and kombu and Celery assume that
what they pop is a message they wrote. An item of the ``ai_tasks`` list that is not kombu's JSON
envelope (a pickle, a line of text, ``null``), or an envelope whose fields have other types,
raised inside the worker's consumer loop, where Celery calls every exception an "Unrecoverable
error": the worker exited (celery/celery#4308 and #1113; kombu#2421 is the same on SQS). A
missing ``properties`` key raised a ``KeyError``, which kombu's virtual transport counts as a
lost connection: the worker reconnected instead. Celery's own refusals (pickle content, an
unknown content type, an unregistered task) log up to 1 KB of the body and every header in full,
so whatever the writer chose, of whatever size, went to the logs.

Two layers, both in the worker:

* :func:`check_envelope` (pure) is applied by the Redis channel (:mod:`.redis_broker`) to each
  item it pops, before kombu reads it: JSON, an object, the fields kombu reads with the types it
  reads them as, a body that decodes, no compression (this deployment never compresses, and a
  compressed body is inflated in the consumer with no size limit). An item that fails is dropped
  (``BRPOP`` already took it) and logged as ``event=broker_message_refused``.
* :class:`Consumer` (Celery's ``worker_consumer``) rejects, without requeueing, a message that
  Celery cannot turn into a request: the decode, unknown-format, unregistered-task and
  invalid-task hooks, and any other exception raised while reading it. It is logged as
  ``event=task_message_refused``.

A log line gives the queue, a reason (a fixed text, or an exception's class and where it was
raised), the size and a SHA-256 prefix of the item, and the task name as a printable line of at
most :data:`NAME_MAX` characters: never the body or another header, which may hold anything.

This keeps the worker alive; it is not a security boundary. A well-formed message for a
registered task is a task invocation, and whoever can write one is an operator
(``docs/security.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import traceback
from collections.abc import Callable
from typing import Any

from celery import signals
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.utils import json as kombu_json
from vine import promise

from personal_assistant.errors import ValidationError
from personal_assistant.safe_text import safe_text

log = logging.getLogger(__name__)

#: A task name is logged as at most this many printable characters.
NAME_MAX = 100
#: Body encodings kombu's virtual transports know (``Channel.codecs`` and plain text).
_BODY_ENCODINGS = frozenset({"base64", "utf-8"})


def fingerprint(raw: bytes) -> str:
    """What identifies an item in a log line without showing it: its size and hash prefix."""
    return f"bytes={len(raw)} sha256={hashlib.sha256(raw).hexdigest()[:16]}"


def _optional(payload: dict[str, Any], key: str, kind: type, field: str) -> Any:
    value = payload.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValidationError(f"is not a {kind.__name__}", field=field)
    return value


def check_envelope(raw: bytes) -> dict[str, Any]:
    """The kombu Redis envelope in ``raw``, or a :class:`ValidationError` naming what is wrong.

    The error's text is fixed (the field and the rule), never a part of ``raw``.
    """
    try:
        # kombu's own reader: its type markers ({"__type__": "uuid", ...}) decode as kombu's
        # do, and raise whatever their decoders raise on a bad value; deep nesting raises
        # RecursionError.
        payload = kombu_json.loads(raw.decode("utf-8"))
    except Exception:
        raise ValidationError("is not UTF-8 JSON kombu can read", field="envelope") from None
    if not isinstance(payload, dict):
        raise ValidationError("is not a JSON object", field="envelope")
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        raise ValidationError("is missing or not an object", field="properties")
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        raise ValidationError("is missing or not a string", field="properties.delivery_tag")
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not all(
        isinstance(info.get(key), str) for key in ("exchange", "routing_key")
    ):
        raise ValidationError(
            "is not an object with an exchange and a routing key",
            field="properties.delivery_info",
        )
    for key in ("content-type", "content-encoding"):
        _optional(payload, key, str, key)
    headers = _optional(payload, "headers", dict, "headers")
    if headers and headers.get("compression") is not None:
        raise ValidationError("is not accepted: messages are never compressed", field="headers")
    body = _optional(payload, "body", str, "body")
    encoding = _optional(properties, "body_encoding", str, "properties.body_encoding")
    if encoding is not None and encoding.lower() not in _BODY_ENCODINGS:
        raise ValidationError("is not base64 or utf-8", field="properties.body_encoding")
    if body and encoding is not None and encoding.lower() == "base64":
        try:
            base64.b64decode(body.encode("ascii"))
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise ValidationError("is not base64", field="body") from None
    return payload


def refuse_item(queue: str, raw: bytes, error: ValidationError) -> None:
    """Log an item the transport dropped (``BRPOP`` has removed it from the queue)."""
    log.error(
        "event=broker_message_refused queue=%s reason=%s %s",
        safe_text(queue, NAME_MAX),
        json.dumps(str(error)),
        fingerprint(raw),
    )


def _where(exc: BaseException) -> str:
    """An exception's class and the innermost place it was raised: no values, no message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__}@{os.path.basename(last.filename)}:{last.lineno}"


def _task_name(message: Any) -> str:
    headers = getattr(message, "headers", None)
    name = headers.get("task") if isinstance(headers, dict) else None
    if not isinstance(name, str):
        return "-"
    return safe_text(name[: NAME_MAX * 2], NAME_MAX) or "-"


def _raw(message: Any) -> bytes:
    body = getattr(message, "body", b"")
    if isinstance(body, str):
        return body.encode("utf-8", "replace")
    return body if isinstance(body, bytes) else b""


_CeleryBlueprint: Any = CeleryConsumer.Blueprint  # a class; celery-types call it a variable


class _Steps(_CeleryBlueprint):  # type: ignore[misc]  # Celery's class is untyped
    """Celery's consumer steps without native delayed delivery: no task is sent with an ETA or
    a countdown, and on quorum queues that step only declared 28 empty ``celery_delayed_*``
    queues and warned about our direct exchange at every start."""

    default_steps = [
        step for step in _CeleryBlueprint.default_steps if not step.endswith(":DelayedDelivery")
    ]


class Consumer(CeleryConsumer):
    """Celery's consumer, whose refusals log no content and never stop the worker."""

    #: Set by Celery from the broker connection (not in celery-types' stubs).
    connection_errors: tuple[type[BaseException], ...]

    Blueprint = _Steps

    def refuse(self, message: Any, reason: str, exc: BaseException | None = None) -> None:
        """Log ``message`` without its content and reject it (no requeue: it fails again)."""
        info = getattr(message, "delivery_info", None)
        queue = info.get("routing_key") if isinstance(info, dict) else None
        log.error(
            "event=task_message_refused queue=%s task=%s reason=%s %s",
            json.dumps(safe_text(queue if isinstance(queue, str) else "-", NAME_MAX)),
            json.dumps(_task_name(message)),
            reason if exc is None else f"{reason}:{_where(exc)}",
            fingerprint(_raw(message)),
        )
        if not getattr(message, "acknowledged", True):
            message.reject_log_error(log, self.connection_errors)
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self.refuse(message, "undecodable", exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self.refuse(message, "not_a_task_message")

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.refuse(message, "unregistered_task", exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self.refuse(message, "invalid_task", exc)

    def create_task_handler(self, promise: Any = promise) -> Callable[[Any], Any]:
        """Celery's handler, with any error from reading a message turned into a refusal.

        A lost broker connection still propagates (Celery reconnects); so do ``SystemExit``
        and the worker's shutdown exceptions, which are not ``Exception``. kombu's Redis
        transport counts ``KeyError`` as a connection error (a stale descriptor after a
        restart, kombu#2582), but from here it is a missing header (``id``): reconnecting
        would restore the message and read it again, for ever.
        """
        handle = super().create_task_handler(promise)
        connection_errors = self.connection_errors

        def on_task_received(message: Any) -> Any:
            try:
                return handle(message)
            except KeyError as exc:
                self.refuse(message, "unreadable", exc)
            except connection_errors:
                raise
            except Exception as exc:
                self.refuse(message, "unreadable", exc)
            return None

        return on_task_received
