"""Hostile items for a broker queue: what someone with write access to Redis could push.

Each is a raw list item as kombu's Redis transport stores it (``LPUSH <prefix><queue>``): a
JSON envelope ``{"body", "content-type", "content-encoding", "headers", "properties"}`` whose
body is base64, or anything else. ``SECRET`` is planted in several of them: no log may show it.
"""

from __future__ import annotations

import base64
import json
import pickle
import uuid
import zlib
from typing import Any

EXECUTE = "personal_assistant.workers.tasks.ai_tasks.execute_ai_task"
SECRET = "hunter2-planted-secret"
BIG = 1_000_000


def envelope(
    body: bytes | str | None = b"[[[1], {}, {}]]",
    *,
    content_type: Any = "application/json",
    headers: Any = None,
    properties: Any = None,
    raw_body: bool = False,
) -> bytes:
    """A kombu Redis envelope; ``headers``/``properties`` replace the well-formed ones."""
    task_id = str(uuid.uuid4())
    if headers is None:
        headers = {"lang": "py", "task": EXECUTE, "id": task_id, "root_id": task_id}
    if properties is None:
        properties = {
            "delivery_tag": str(uuid.uuid4()),
            "body_encoding": "base64",
            "delivery_info": {"exchange": "", "routing_key": "ai_tasks"},
            "priority": 0,
        }
    if isinstance(body, bytes) and not raw_body:
        body = base64.b64encode(body).decode()
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": content_type,
            "headers": headers,
            "properties": properties,
        }
    ).encode()


def _props(**changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "delivery_tag": str(uuid.uuid4()),
        "body_encoding": "base64",
        "delivery_info": {"exchange": "", "routing_key": "ai_tasks"},
    }
    props.update(changes)
    return {k: v for k, v in props.items() if v is not ...}


def _headers(**changes: Any) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    headers: dict[str, Any] = {"lang": "py", "task": EXECUTE, "id": task_id, "root_id": task_id}
    headers.update(changes)
    return {k: v for k, v in headers.items() if v is not ...}


#: Items that are not kombu's envelope, or whose fields kombu reads have other types.
TRANSPORT: dict[str, bytes] = {
    "pickle": pickle.dumps({"task": EXECUTE, "args": [[1]], "password": SECRET}),
    "garbage": b"\x00\xff\xfe" * 8 + SECRET.encode(),
    "text": f"hello, worker: {SECRET}".encode(),
    "json-array": b"[1, 2, 3]",
    "json-null": b"null",
    "json-string": json.dumps(SECRET).encode(),
    "no-properties": json.dumps({"body": "", "headers": {}}).encode(),
    "properties-not-object": envelope(properties=[1, 2]),
    "no-delivery-tag": envelope(properties=_props(delivery_tag=...)),
    "delivery-tag-list": envelope(properties=_props(delivery_tag=[1])),
    "delivery-info-string": envelope(properties=_props(delivery_info="ai_tasks")),
    "body-not-base64": envelope("!!! not base64 " + SECRET),
    "body-number": envelope(12345, raw_body=True),  # type: ignore[arg-type]
    "huge-not-json": b"{" + b"x" * BIG + SECRET.encode(),
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "kombu-type-marker": envelope(headers={"__type__": "uuid", "__value__": {"x": SECRET}}),
    "body-encoding-unknown": envelope(properties=_props(body_encoding="rot13")),
    "content-type-number": envelope(content_type=7),
    "headers-list": envelope(headers=[EXECUTE]),
    "compression-bomb": envelope(
        zlib.compress(b"\0" * 10_000_000, 9), headers=_headers(compression="application/x-gzip")
    ),
}

#: Envelopes kombu reads, whose content Celery must refuse.
CELERY: dict[str, bytes] = {
    "pickle-content": envelope(
        pickle.dumps(([[1]], {}, {})), content_type="application/x-python-serialize"
    ),
    "unknown-content-type": envelope(b"[[[1]], {}, {}]", content_type="application/x-evil"),
    "json-body-not-json": envelope(f"not json {SECRET}".encode()),
    "task-name-list": envelope(headers=_headers(task=[EXECUTE])),
    "unknown-task": envelope(headers=_headers(task="os.system")),
    "unknown-task-no-id": envelope(headers=_headers(task="os.system", id=...)),
    "no-id": envelope(headers=_headers(id=...)),
    "body-json-number": envelope(b"5"),
    "timelimit-number": envelope(headers=_headers(timelimit=5)),
    "eta-garbage": envelope(headers=_headers(eta=SECRET)),
    "huge-headers": envelope(headers=_headers(task="x" * BIG + SECRET)),
    "huge-body": envelope(b"[" + b"1," * (BIG // 2) + b'"' + SECRET.encode() + b'"]'),
}
