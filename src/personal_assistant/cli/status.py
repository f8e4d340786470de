"""``pa status``: is the system making progress? A fast snapshot of the database and the
broker: open runs, overdue tasks, live workers and scheduler, queues without a consumer, the
broker answering. Exit 1 if anything is wrong (``pa doctor`` is the thorough check)."""

from __future__ import annotations

import json

import typer

from personal_assistant.cli import session
from personal_assistant.core.states import ProcessRole


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show open runs, the oldest queued run, overdue tasks, stalled and dead workers' runs."""
    health = session.read(lambda reads: reads.health())
    snap = health.snapshot
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "healthy": health.healthy,
                    "problems": list(health.problems),
                    "open_runs": snap.open_runs,
                    "active_tasks": snap.active_tasks,
                    "oldest_queued_at": snap.oldest_queued_at and snap.oldest_queued_at.isoformat(),
                    "most_overdue_at": snap.most_overdue_at and snap.most_overdue_at.isoformat(),
                    "expired_running": snap.expired_running,
                    "last_finished_at": snap.last_finished_at and snap.last_finished_at.isoformat(),
                    "processes": [
                        {
                            "worker_id": p.worker_id,
                            "role": p.role,
                            "queues": list(p.queues),
                            "version": p.version,
                            "silent_s": round(p.silent_for(snap.taken_at), 1),
                        }
                        for p in snap.processes
                    ],
                    "stalled_workers": [
                        {
                            "worker_id": w.worker_id,
                            "running_runs": w.running,
                            "last_heartbeat_at": w.last_beat_at and w.last_beat_at.isoformat(),
                            "silent_s": round(w.silent_for(snap.taken_at), 1),
                        }
                        for w in health.stalled
                    ],
                },
                indent=2,
            )
        )
    else:
        runs = ", ".join(f"{k} {v}" for k, v in sorted(snap.open_runs.items())) or "none"
        typer.echo(f"active tasks: {snap.active_tasks}")
        typer.echo(f"open runs:    {runs}")
        workers = health.live_workers()
        schedulers = health.live(ProcessRole.SCHEDULER)
        typer.echo(f"live:         {len(workers)} worker(s), {len(schedulers)} scheduler(s)")
        last = snap.last_finished_at
        typer.echo(
            f"last finished run: {last:%Y-%m-%d %H:%M:%S} UTC"
            if last
            else "last finished run: none yet"
        )
        typer.echo("healthy" if health.healthy else "problems:")
        for problem in health.problems:
            typer.echo(f"  - {problem}")
    if not health.healthy:
        raise typer.Exit(1)
