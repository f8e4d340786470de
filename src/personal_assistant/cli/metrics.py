"""``pa metrics serve``: the deployment's figures for Prometheus, read from the database and the
broker at each scrape (one exporter per deployment; workers and schedulers serve their own
counters on ``METRICS_PORT``)."""

from __future__ import annotations

import contextlib

import typer

from personal_assistant.cli import session

app = typer.Typer(help="Prometheus metrics of the deployment.", no_args_is_help=True)

#: The exporter's port when none is given (workers take 9808 in the compose files).
DEFAULT_PORT = 9807


@app.command("serve")
def serve(
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="0: any free port."),
    bind: str = typer.Option(
        "127.0.0.1", "--bind", help="Address to listen on (0.0.0.0 in a container)."
    ),
) -> None:
    """Serve the deployment's figures (queues, processes, overdue work) on /metrics."""

    def ready(listening: int) -> None:
        typer.echo(f"Serving the deployment's metrics on http://{bind}:{listening}/metrics")

    with contextlib.suppress(KeyboardInterrupt):
        session.run(lambda assistant: assistant.system.serve_metrics(port, bind, ready=ready))
