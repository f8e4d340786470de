"""``Idempotency-Key`` on the creates: the same request sent twice makes one object.

A route that creates takes :data:`IdempotencyKey` and hands :func:`once` the way to make its
answer. Without the header the object is made as usual. With it, the first request under that
key (per caller) is answered and its answer stored a day (:mod:`personal_assistant.auth.
idempotency`); the same request again gets that answer back (same status, body and
``Location``, with ``Idempotent-Replayed: true``) and creates nothing. The same key with another
request (method, path or body) is a 422, and a key whose first request is still being answered
is a 409. A request that fails stores nothing: it may be sent again with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Request, Response
from pydantic import BaseModel

from personal_assistant.app.assistant import Assistant
from personal_assistant.app.idempotency import Answer

__all__ = ["REPLAYED", "IdempotencyKey", "Made", "fingerprint", "once"]

#: Set on an answer given again.
REPLAYED = "Idempotent-Replayed"

#: The optional header of a create: 1 to 255 visible ASCII characters (a UUID is usual).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="Makes a retry safe: the same request sent again with the same key within "
        "24 h gets the first answer back and creates nothing.",
    ),
]


@dataclass(frozen=True)
class Made:
    """What a create answered: its status, its body, its ``Location``."""

    status: int
    body: BaseModel
    location: str | None = None


def fingerprint(method: str, path: str, body: BaseModel | None) -> str:
    """The SHA-256 of a request: its method, path and body (as JSON with sorted keys, so that
    the order of the fields and the spacing do not count)."""
    shown = None if body is None else body.model_dump(mode="json")
    text = json.dumps([method.upper(), path, shown], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _response(answer: Answer, *, replayed: bool = False) -> Response:
    headers = {} if answer.location is None else {"Location": answer.location}
    if replayed:
        headers[REPLAYED] = "true"
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", headers=headers
    )


async def once(
    app: Assistant,
    user_id: int,
    key: str | None,
    request: Request,
    body: BaseModel | None,
    make: Callable[[], Awaitable[Made]],
) -> Response:
    """The answer of ``make()``, made once per caller and key (see the module)."""
    if key is None:
        made = await make()
        return _response(Answer(made.status, made.body.model_dump_json(), made.location))
    stored = await app.idempotency.claim(
        user_id, key, fingerprint(request.method, request.url.path, body)
    )
    if stored is not None:
        return _response(stored, replayed=True)
    try:
        made = await make()
    except Exception:
        await app.idempotency.release(user_id, key)
        raise
    answer = Answer(made.status, made.body.model_dump_json(), made.location)
    await app.idempotency.finish(user_id, key, answer)
    return _response(answer)
