"""``/v1/doctor`` (admins): the deployment validated check by check, as ``pa doctor --json``.

Read only and quick by default: no remote control of the workers (``quick``), no canary. A
canary (``canary=true``) fires a task of a reserved user and follows it to its notification, for
at most ``timeout`` seconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from personal_assistant.api.security import AdminUser, App

router = APIRouter(tags=["system"])


class DoctorCheck(BaseModel):
    id: str
    section: str
    title: str
    #: pass, warn, fail or skip.
    verdict: str
    evidence: str
    fix: str
    figures: dict[str, float | None]


class DoctorReport(BaseModel):
    #: ``pa doctor``'s: 0 all passed, 1 warnings, 2 failures.
    exit_code: int
    summary: dict[str, int]
    environment: dict[str, str]
    started_at: str
    finished_at: str
    duration_s: float
    checks: list[DoctorCheck]


@router.get("/v1/doctor", response_model=DoctorReport)
async def doctor(
    _: AdminUser,
    app: App,
    quick: bool = True,
    canary: bool = False,
    timeout: Annotated[float, Query(ge=1, le=300)] = 60.0,
) -> Response:
    """Validate the running deployment (admins only); 200 whatever the verdict: `exit_code`
    says. `quick=false` also asks the workers over the broker; `canary=true` runs a canary
    task end to end."""
    from personal_assistant.doctor import render
    from personal_assistant.doctor.run import Options

    options = Options(quick=quick, canary=canary, timeout_s=timeout)
    report = await app.system.doctor(options)
    return Response(render.as_json(report), media_type="application/json")
