"""``pa serve``: the HTTP API (:mod:`personal_assistant.api`) and the web dashboard
(:mod:`personal_assistant.web`) under uvicorn, until Ctrl-C."""

from __future__ import annotations

import typer

from personal_assistant.cli import session

#: Where ``pa serve`` listens when not told: this machine only.
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def serve(
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=0, max=65535, help="0: any free port."),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, its pages at /docs) and the dashboard
    (at /)."""
    import uvicorn

    from personal_assistant.cli.schema import require_schema
    from personal_assistant.web.site import create_site

    settings = session.settings()
    require_schema(settings.database_url)
    uvicorn.run(
        create_site(settings),
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=False,
        # Open event streams end at shutdown (api/events.py); a request still running after
        # this is cut rather than holding Ctrl-C up.
        timeout_graceful_shutdown=5,
    )
