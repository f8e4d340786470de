"""Verdicts on the database (pure): reachable, schema at head, autovacuum on the hot tables,
``idle_in_transaction_session_timeout`` usable, clock skew."""

from __future__ import annotations

from personal_assistant.doctor.database_facts import HOT_TABLES, DatabaseFacts
from personal_assistant.doctor.report import Check, failed, passed, skipped, warned

#: The per-table autovacuum options migration 0001 sets, and the most each may be.
AUTOVACUUM_MAX = {"autovacuum_vacuum_scale_factor": 0.05}
#: Migration 0016: every VACUUM cleans the indexes. By default PostgreSQL 14 and newer skip the
#: index pass when under 2 % of the pages hold dead rows, leaving a claim's dead entries where
#: the idle tick reads.
INDEX_CLEANUP = "vacuum_index_cleanup"
ON = frozenset({"on", "true", "yes", "1"})
#: Skew above this is reported (every process reads the database's clock, so it is tolerated).
SKEW_WARN_S = 2.0


def _not_judged(facts: DatabaseFacts) -> str:
    return "the database is unreachable" if not facts.reachable else "PostgreSQL only"


def reachable(facts: DatabaseFacts) -> Check:
    title = "The database answers"
    if not facts.reachable:
        return failed(
            "database.reachable",
            title,
            f"{facts.dialect} at {facts.url} is unreachable: {facts.error}",
            "start the database or fix DATABASE_URL; no run starts or is recorded until it answers",
        )
    version = f" {facts.version}" if facts.version else ""
    latency = facts.latency_ms or 0.0
    return passed(
        "database.reachable",
        title,
        f"{facts.dialect}{version} at {facts.url}, SELECT 1 in {latency:.1f} ms",
        latency_ms=round(latency, 2),
    )


def migrations(facts: DatabaseFacts) -> Check:
    title = "The schema is at the newest migration"
    if not facts.reachable:
        return skipped("database.migrations", title, "the database is unreachable")
    if facts.revision == facts.head:
        return passed("database.migrations", title, f"at {facts.revision} (head)")
    if facts.revision is None:
        return failed(
            "database.migrations",
            title,
            "the database was never migrated (no alembic_version)",
            "pa db upgrade",
        )
    return failed(
        "database.migrations",
        title,
        f"the database is at {facts.revision}, this code's head is {facts.head}",
        "pa db upgrade (or deploy the code that matches the schema, if it is newer)",
    )


def autovacuum(facts: DatabaseFacts) -> Check:
    title = "Early autovacuum, indexes included, on the hot tables"
    if not facts.reachable or facts.dialect != "postgresql":
        return skipped("database.autovacuum", title, _not_judged(facts))
    off = []
    for table in HOT_TABLES:
        options = facts.autovacuum.get(table, {})
        for name, most in AUTOVACUUM_MAX.items():
            value = options.get(name)
            if value is None or float(value) > most:
                off.append(f"{table}.{name}={value or 'default (0.2)'}")
        cleanup = options.get(INDEX_CLEANUP)
        if (cleanup or "").lower() not in ON:
            off.append(f"{table}.{INDEX_CLEANUP}={cleanup or 'default (auto)'}")
    if off:
        return warned(
            "database.autovacuum",
            title,
            "; ".join(off) + ": the idle tick slows after mass claims until a vacuum cleans up",
            "ALTER TABLE <table> SET (autovacuum_vacuum_scale_factor = 0.01, "
            "vacuum_index_cleanup = on) (migrations 0001 and 0016 set them; a restored dump "
            "may have lost them)",
        )
    shown = ", ".join(
        f"{t} {facts.autovacuum[t].get('autovacuum_vacuum_scale_factor')}" for t in HOT_TABLES
    )
    return passed("database.autovacuum", title, f"vacuum scale factor: {shown}; index cleanup: on")


def idle_timeout(facts: DatabaseFacts) -> Check:
    title = "idle_in_transaction_session_timeout can be set"
    if not facts.reachable or facts.dialect != "postgresql":
        return skipped("database.idle_timeout", title, _not_judged(facts))
    if facts.idle_timeout_error is None:
        return passed(
            "database.idle_timeout",
            title,
            "SET LOCAL accepted: a stopped process cannot hold row locks past LEASE_MARGIN",
        )
    return failed(
        "database.idle_timeout",
        title,
        f"refused: {facts.idle_timeout_error}",
        "use PostgreSQL 9.6 or newer, and a role allowed to set it (a pooler in statement "
        "mode refuses SET LOCAL: use transaction mode)",
    )


def clock_skew(facts: DatabaseFacts) -> Check:
    title = "This host's clock agrees with the database's"
    if not facts.reachable or facts.skew_s is None:
        return skipped("database.clock_skew", title, _not_judged(facts))
    skew = round(facts.skew_s, 3) + 0.0  # no "-0.000"
    evidence = f"the database's clock is {skew:+.3f} s from this host's"
    if abs(skew) > SKEW_WARN_S:
        return warned(
            "database.clock_skew",
            title,
            evidence + " (every process schedules by the database's clock, so runs stay "
            "on time; logs and this host's tools disagree)",
            "synchronise the clocks (chrony, systemd-timesyncd)",
            skew_s=round(skew, 3),
        )
    return passed("database.clock_skew", title, evidence, skew_s=round(skew, 3))


def database_checks(facts: DatabaseFacts) -> list[Check]:
    return [
        reachable(facts),
        migrations(facts),
        autovacuum(facts),
        idle_timeout(facts),
        clock_skew(facts),
    ]
