"""``/v1/export`` and ``/v1/import``: the caller's tasks, runs and notifications as the JSON
export document (``pa export``'s), and such a document read back into the caller's account.

An import always goes into the caller: the ``user`` of the document is not used, and every row
gets a new id, so that no document can reach another user's account. It is all or nothing (one
transaction, within the caller's quotas); its body is bounded by ``API_MAX_BODY_BYTES``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from personal_assistant.api.security import App, Owner
from personal_assistant.exports.document import load_json

router = APIRouter(tags=["exports"])


class ExportDocument(BaseModel):
    """The JSON export: the rows of each table with their columns, times ISO-8601 in UTC."""

    format: str
    version: int
    exported_at: str
    user: dict[str, Any]
    tasks: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    notifications: list[dict[str, Any]]


class ImportOut(BaseModel):
    user_id: int
    created_user: bool
    tasks: int
    runs: int
    notifications: int


_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A JSON export document (`GET /v1/export`, `pa export`).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.get("/v1/export")
async def export(owner: Owner, app: App) -> ExportDocument:
    """The caller's tasks, runs and notifications as the JSON export document."""
    return ExportDocument.model_validate(await app.exports.document(owner.id))


@router.post("/v1/import", openapi_extra=_DOCUMENT_BODY)
async def import_(request: Request, owner: Owner, app: App) -> ImportOut:
    """Import a JSON export into the caller: all of it or nothing (an invalid document is a
    422 naming the bad value, an export imported already a 409)."""
    data = load_json(await request.body())
    report = await app.exports.import_(data, user_id=owner.id)
    return ImportOut(
        user_id=report.user_id,
        created_user=report.created_user,
        tasks=report.tasks,
        runs=report.runs,
        notifications=report.notifications,
    )
