"""``pa alerts list|test``: the built-in alert evaluator's rules and state, and a test alert to
every admin (:mod:`personal_assistant.alerts`)."""

from __future__ import annotations

import typer

from personal_assistant.cli import session
from personal_assistant.cli.output import JsonOpt, iso, print_json, table, when

app = typer.Typer(help="Alerts told to the admin users, without Prometheus.", no_args_is_help=True)


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """The rules with their thresholds, what holds now, and the open and recent alerts."""
    seen = session.run(lambda a: a.alerts.overview())
    if as_json:
        print_json(
            {
                "enabled": seen.enabled,
                "interval_seconds": seen.interval_s,
                "open_after_seconds": seen.open_after_s,
                "cooldown_seconds": seen.cooldown_s,
                "admins": seen.admins,
                "rules": [
                    {
                        "rule": r.rule,
                        "severity": r.severity,
                        "condition": r.condition,
                        "holding": list(r.holding),
                    }
                    for r in seen.rules
                ],
                "alerts": [
                    {
                        "key": e.key,
                        "status": e.status,
                        "summary": e.summary,
                        "value": e.value,
                        "started_at": iso(e.started_at),
                        "opened_at": iso(e.opened_at),
                        "resolved_at": iso(e.resolved_at),
                    }
                    for e in seen.episodes
                ],
            }
        )
        return
    if seen.enabled:
        typer.echo(
            f"Evaluated every {seen.interval_s:g} s on maintenance_tasks; an alert opens after "
            f"{seen.open_after_s:g} s, at most once per {seen.cooldown_s:g} s; "
            f"{seen.admins} admin(s) told."
        )
    else:
        typer.echo("The evaluator is off (ALERT_INTERVAL_SECONDS=0); the rules as they read now:")
    if seen.admins == 0:
        typer.echo("No admin user: nobody is told. Make one with `pa user edit ID --admin`.")
    rules = [
        (
            r.rule,
            r.severity,
            r.condition,
            ", ".join(k.partition(":")[2] or "yes" for k in r.holding),
        )
        for r in seen.rules
    ]
    typer.echo("")
    typer.echo(table(("RULE", "SEVERITY", "CONDITION", "HOLDS NOW"), rules, empty="no rules"))
    episodes = [
        (e.status, e.key, e.summary, when(e.started_at), when(e.opened_at), when(e.resolved_at))
        for e in seen.episodes
    ]
    typer.echo("")
    typer.echo(
        table(
            ("STATUS", "ALERT", "SUMMARY", "SINCE", "OPENED", "RESOLVED"),
            episodes,
            empty="no alerts yet",
        )
    )


@app.command("test")
def test(as_json: JsonOpt = False) -> None:
    """Send a test alert to every admin user, in-app and on each of their channels."""
    sent = session.run(lambda a: a.alerts.test())
    if as_json:
        print_json({"recipients": {str(k): v for k, v in sent.recipients.items()}})
        return
    for user_id, channels in sent.recipients.items():
        typer.echo(f"test alert sent to user {user_id}: {', '.join(channels)}")
