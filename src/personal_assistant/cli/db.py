"""``pa db upgrade``: migrate the configured database to the newest revision."""

from __future__ import annotations

import typer

from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, block, print_json
from personal_assistant.redaction import mask_url

app = typer.Typer(help="The database schema.", no_args_is_help=True)


def upgrade_or_explain(url: str) -> None:
    """Migrate ``url``; a database that cannot be reached or migrated is a one-line error.

    ``pa db upgrade`` and ``pa run`` both migrate: neither shows a driver's traceback for a
    server that is down or a database that does not exist.
    """
    from personal_assistant.database import migrate
    from personal_assistant.database.failures import explained

    with explained("cannot migrate", url):
        migrate.upgrade(url)


@app.command("upgrade")
def upgrade(as_json: JsonOpt = False) -> None:
    """Migrate the configured database to the newest revision."""
    from personal_assistant.cli.schema import current_revision

    url = session.settings().database_url
    before = current_revision(url)
    upgrade_or_explain(url)
    after = current_revision(url)
    if as_json:
        print_json({"database": mask_url(url), "previous": before, "revision": after})
        return
    pairs: list[tuple[str, object]] = [
        ("database", mask_url(url)),
        ("previous", before or "none"),
        ("revision", after),
    ]
    typer.echo(block(pairs))
