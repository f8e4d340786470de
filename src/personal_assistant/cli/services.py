"""``pa run``, ``pa worker``, ``pa beat``, ``pa serve`` and ``pa status``: the processes of the
system."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the process commands to ``app``."""
    from personal_assistant.cli import doctor, processes, serve, status

    app.command("run", help="Migrate, then run worker, scheduler and HTTP API until Ctrl-C.")(
        processes.run
    )
    app.command(
        "worker",
        help="Run a Celery worker on every queue of the routing table.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(processes.worker)
    app.command("status", help="Is the system making progress? Exit 1 if not.")(status.status)
    app.command(
        "doctor", help="Validate the running deployment: exit 0 passed, 1 warnings, 2 failures."
    )(doctor.doctor)
    app.command(
        "beat",
        help="Run the scheduler (celery beat with the database scheduler).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(processes.beat)
    app.command("serve", help="Serve the HTTP API until Ctrl-C.")(serve.serve)
