"""Celery messages as a Redis broker holds them: each list item is a JSON envelope whose body is
the task's ``[args, kwargs, embed]``, base64-encoded by kombu's Redis transport."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any


def message_body(envelope: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """The ``(args, kwargs, embed)`` of one message's envelope (``json.loads`` of a list item)."""
    body: Any = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, embed = json.loads(body)
    return args, kwargs, embed
