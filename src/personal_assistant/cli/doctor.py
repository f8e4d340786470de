"""``pa doctor``: validate the running deployment; exit 0 (all passed), 1 (warnings) or 2
(failures). Read only unless ``--canary`` or ``--deep``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from personal_assistant.cli import session


def doctor(
    quick: bool = typer.Option(
        False, "--quick", help="Database, broker and heartbeats only: fast, for healthchecks."
    ),
    canary: bool = typer.Option(
        False,
        "--canary",
        help="Also fire a canary task and follow it to its notification (writes rows of a "
        "reserved user, deleted afterwards).",
    ),
    deep: bool = typer.Option(
        False,
        "--deep",
        help="The canary, a failing canary that must retry and end failed, and a burst of "
        "runs due at once (throughput, lateness).",
    ),
    burst: int = typer.Option(200, "--burst", min=1, max=10_000, help="Runs in the burst."),
    timeout: float = typer.Option(
        60.0, "--timeout", min=1, help="Seconds each canary may take before it fails."
    ),
    user: int | None = typer.Option(
        None,
        "--user",
        help="Also send a test message through each channel of this user (real messages).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML to FILE.")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="Also write the Markdown validation report to FILE."),
    ] = None,
) -> None:
    """Validate the running deployment, check by check."""
    from personal_assistant.doctor import render
    from personal_assistant.doctor.run import Options

    options = Options(
        quick=quick,
        canary=canary or deep,
        deep=deep,
        burst_runs=burst,
        timeout_s=timeout,
        channels_of=user,
    )
    report = session.run(lambda app: app.system.doctor(options), schema=False)
    if junit is not None:
        junit.write_text(render.junit(report), encoding="utf-8")
    if markdown is not None:
        markdown.write_text(render.markdown(report), encoding="utf-8")
    if as_json:
        typer.echo(render.as_json(report))
    else:
        typer.echo(render.table(report, color=sys.stdout.isatty()))
    raise typer.Exit(report.exit_code)
