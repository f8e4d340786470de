"""``pa doctor``'s verdicts (pure): every check, judged on facts built by hand.

No database, no broker, no worker: each test builds the facts a reader would have gathered
(:class:`DatabaseFacts`, :class:`BrokerFacts`, a :class:`Snapshot` of process rows, a canary's
:class:`RunTrace`, a :class:`Burst`, :class:`Settings`) and asserts the verdict, the check id,
and that the evidence and the fix name what an operator must act on. Bounds are probed just
under and just over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from personal_assistant.config import Settings
from personal_assistant.core.states import ProcessRole
from personal_assistant.doctor import (
    broker_checks,
    canary_checks,
    database_checks,
    process_checks,
    settings_checks,
)
from personal_assistant.doctor.canary import Burst, RunTrace
from personal_assistant.doctor.database_facts import DatabaseFacts
from personal_assistant.doctor.process_checks import FORGET_AFTER_S, REQUIRED, Bounds
from personal_assistant.doctor.remote import RemoteFacts
from personal_assistant.doctor.report import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_WARNINGS,
    Check,
    Report,
    Verdict,
    failed,
    one_line,
    passed,
    skipped,
    warned,
)
from personal_assistant.workers.broker_facts import BrokerFacts, QueueFacts
from personal_assistant.workers.routing import QUEUES
from personal_assistant.workers.utils.health import ProcessBeat, Snapshot, WorkerLoad
from support.keys import CHANNEL_KEY

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
VERSION = "1.4.0"
BOUNDS = Bounds()  # heartbeat 30 s, overdue 30 s, queue age 60 s, reaper grace 45 s
#: The delivery settings a worker of the project's Celery app reports (presence.py).
GOOD_CONFIG: dict[str, Any] = {**REQUIRED, "worker_pool": "threads", "worker_concurrency": 16}


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def _text(check: Check) -> str:
    return f"{check.evidence}\n{check.fix}"


# -- the report -----------------------------------------------------------------------------


def _report(*verdicts: Verdict) -> Report:
    checks = tuple(
        Check(f"section.check{n}", "A check", verdict, "seen", "do this")
        for n, verdict in enumerate(verdicts)
    )
    return Report(checks, {}, NOW, NOW + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [
        ((), EXIT_OK),
        ((Verdict.PASS,), EXIT_OK),
        ((Verdict.PASS, Verdict.SKIP, Verdict.SKIP), EXIT_OK),
        ((Verdict.SKIP,), EXIT_OK),
        ((Verdict.PASS, Verdict.WARN), EXIT_WARNINGS),
        ((Verdict.WARN, Verdict.SKIP), EXIT_WARNINGS),
        ((Verdict.PASS, Verdict.WARN, Verdict.FAIL), EXIT_FAILURES),
        ((Verdict.FAIL, Verdict.SKIP), EXIT_FAILURES),
    ],
)
def test_exit_code_is_the_worst_verdict_and_skips_do_not_count(
    verdicts: tuple[Verdict, ...], code: int
) -> None:
    assert (EXIT_OK, EXIT_WARNINGS, EXIT_FAILURES) == (0, 1, 2)
    assert _report(*verdicts).exit_code == code


def test_report_counts_and_finds_checks_by_id() -> None:
    report = Report(
        (
            passed("a.one", "One", "ok", ms=1.0),
            warned("a.two", "Two", "meh", "fix it"),
            skipped("b.three", "Three", "n/a"),
        ),
        {},
        NOW,
        NOW,
    )
    assert report.counts[Verdict.PASS] == report.counts[Verdict.WARN] == 1
    assert report.counts[Verdict.FAIL] == 0
    assert report.by_id("a.two").fix == "fix it"
    assert report.by_id("b.three").section == "b"
    assert report.by_id("a.one").figures == {"ms": 1.0}
    with pytest.raises(KeyError):
        report.by_id("a.four")


def test_a_failure_carries_its_fix_and_a_skip_none() -> None:
    check = failed("x.y", "T", "seen", "do", n=2.0)
    assert (check.verdict, check.fix, check.figures) == (Verdict.FAIL, "do", {"n": 2.0})
    assert skipped("x.y", "T", "why").fix == ""


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Error 111 connecting to redis://:Tr0ub4dor-3-horse@cache:6379/0", "Tr0ub4dor-3-horse"),
        ("amqp://pa:k9:Zq!x7-Lm2@rabbit// refused the login", "k9:Zq!x7-Lm2"),
        ("bad dsn host=db password=Tr0ub4dor-3-horse user=pa", "Tr0ub4dor-3-horse"),
    ],
)
def test_an_error_becomes_evidence_without_its_secret(message: str, secret: str) -> None:
    shown = one_line(ConnectionError(message))
    assert secret not in shown and "****" in shown


def test_an_error_as_evidence_is_the_drivers_one_bounded_line() -> None:
    wrapper = RuntimeError("(sqlalchemy.exc.OperationalError) ... https://sqlalche.me/e/20/e3q8")
    wrapper.orig = OSError('could not translate host name "db"\n  to address')  # type: ignore[attr-defined]
    assert one_line(wrapper) == 'could not translate host name "db" to address'
    assert len(one_line(Exception("x" * 1000))) == 300
    assert one_line(TimeoutError()) == "TimeoutError"


# -- settings ---------------------------------------------------------------------------------

STRONG = ("Tr0ub4dor-3-horse", "p%40ss%3Aw0rd-long", "k9:Zq!x7-Lm2")


def _settings(**env: str) -> Settings:
    """Settings from these variables; the three URLs are always given, so the environment of
    the machine running the tests cannot leak in."""
    urls = {
        "DATABASE_URL": "postgresql://pa:pa@127.0.0.1:5432/pa",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/1",
        "CHANNEL_KEYS": CHANNEL_KEY,
    }
    return Settings(**(urls | env))  # type: ignore[arg-type]  # aliases are the init names


def test_settings_checks_pass_on_sound_settings() -> None:
    checks = settings_checks.settings_checks(_settings())
    assert [(c.id, c.verdict) for c in checks] == [
        ("config.valid", Verdict.PASS),
        ("config.secrets", Verdict.PASS),
        ("config.timeouts", Verdict.PASS),
    ]
    assert "CHANNEL_KEYS set" in checks[1].evidence
    assert "AGENT_TIMEOUT 60 s <= RUN_TIMEOUT 300 s" in checks[2].evidence


def test_no_channel_keys_with_a_database_server_warns() -> None:
    check = settings_checks.secrets(_settings(CHANNEL_KEYS=""))
    assert (check.id, check.verdict) == ("config.secrets", Verdict.WARN)
    assert "CHANNEL_KEYS is unset" in check.evidence and "CHANNEL_KEYS" in check.fix


def test_the_embedded_default_needs_no_channel_keys() -> None:
    check = settings_checks.secrets(_settings(DATABASE_URL="sqlite:////tmp/pa.db", CHANNEL_KEYS=""))
    assert check.verdict is Verdict.PASS and "var/channel.key" in check.evidence


def test_a_channel_test_that_fails_names_the_channel_and_the_reason() -> None:
    ok = canary_checks.channel_test("hook", "webhook", True, None)
    assert (ok.id, ok.verdict) == ("channels.hook", Verdict.PASS)
    bad = canary_checks.channel_test("hook", "webhook", False, "connection refused")
    assert bad.verdict is Verdict.FAIL
    assert "hook" in bad.evidence and "connection refused" in bad.evidence
    assert "pa channel test hook" in bad.fix


def test_postgres_password_on_a_remote_host_fails_naming_url_and_host() -> None:
    check = settings_checks.secrets(
        _settings(DATABASE_URL="postgresql://postgres:postgres@db.internal:5432/pa")
    )
    assert (check.id, check.verdict) == ("config.secrets", Verdict.FAIL)
    assert "DATABASE_URL" in check.evidence and "db.internal" in check.evidence
    # A well-known default is no secret: naming it says what to change.
    assert "'postgres'" in check.evidence
    assert "postgres" not in check.fix and "strong password" in check.fix


@pytest.mark.parametrize(
    ("name", "url", "named"),
    [
        ("CELERY_BROKER_URL", "amqp://guest:guest@rabbit:5672//", "the broker URL"),
        ("CELERY_RESULT_BACKEND", "redis://:changeme@cache:6379/1", "the result backend URL"),
        ("DATABASE_URL", "postgresql://pa:admin@10.0.0.5/pa", "DATABASE_URL"),
    ],
)
def test_every_url_is_checked_for_a_default_password(name: str, url: str, named: str) -> None:
    check = settings_checks.secrets(_settings(**{name: url}))
    assert check.verdict is Verdict.FAIL
    assert check.evidence.startswith(named)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_a_default_password_on_loopback_passes(host: str) -> None:
    check = settings_checks.secrets(_settings(DATABASE_URL=f"postgresql://pa:postgres@{host}/pa"))
    assert (check.id, check.verdict) == ("config.secrets", Verdict.PASS)


def test_a_unix_socket_url_counts_as_local() -> None:
    url = "postgresql://pa:postgres@/pa?host=/var/run/postgresql"
    assert settings_checks.secrets(_settings(DATABASE_URL=url)).verdict is Verdict.PASS


@pytest.mark.parametrize("strong", STRONG)
def test_a_strong_password_never_appears_in_any_settings_check(strong: str) -> None:
    cases = [
        _settings(
            DATABASE_URL=f"postgresql://pa:{strong}@db.internal:5432/pa",
            CELERY_BROKER_URL=f"redis://:{strong}@cache:6379/0",
            CELERY_RESULT_BACKEND=f"redis://user:{strong}@cache:6379/1",
        ),
        # A default password elsewhere makes secrets fail: its evidence still hides this one.
        _settings(
            DATABASE_URL=f"postgresql://pa:{strong}@db.internal:5432/pa",
            CELERY_BROKER_URL="amqp://guest:guest@rabbit:5672//",
            CELERY_RESULT_BACKEND=f"redis://:{strong}@cache:6379/1",
        ),
        # Failing timeouts too.
        _settings(DATABASE_URL=f"postgresql://pa:{strong}@db/pa", AGENT_TIMEOUT="400"),
    ]
    decoded = strong.replace("%40", "@").replace("%3A", ":")
    for settings in cases:
        for check in settings_checks.settings_checks(settings):
            for text in (check.evidence, check.fix, check.title):
                assert strong not in text and decoded not in text, check.id
    failing = settings_checks.secrets(cases[1])
    assert failing.verdict is Verdict.FAIL and "'guest'" in failing.evidence


#: A password SQLAlchemy and PostgreSQL accept unencoded, which urllib cannot split.
BRACKETED = "postgresql://pa:Str0ng[pass@db.internal:5432/pa"


def test_a_url_urllib_cannot_split_never_shows_its_password() -> None:
    settings = _settings(DATABASE_URL=BRACKETED)
    for check in (settings_checks.valid(settings), settings_checks.timeouts(settings)):
        assert "Str0ng" not in _text(check)


def test_secrets_survive_a_url_urllib_cannot_split() -> None:
    check = settings_checks.secrets(_settings(DATABASE_URL=BRACKETED))
    assert check.verdict is Verdict.PASS and "Str0ng" not in _text(check)


def test_agent_timeout_longer_than_the_run_fails_timeouts() -> None:
    check = settings_checks.timeouts(_settings(AGENT_TIMEOUT="400"))
    assert (check.id, check.verdict) == ("config.timeouts", Verdict.FAIL)
    assert "AGENT_TIMEOUT 400 s > RUN_TIMEOUT 300 s" in check.evidence
    assert "AGENT_TIMEOUT" in check.fix


def test_agent_timeout_equal_to_the_run_passes() -> None:
    assert settings_checks.timeouts(_settings(AGENT_TIMEOUT="300")).verdict is Verdict.PASS


def test_a_lease_outliving_the_visibility_timeout_fails_timeouts() -> None:
    # 3 beats x 1200 s + 30 s of margin = 3630 s >= the 3600 s visibility timeout.
    check = settings_checks.timeouts(_settings(HEARTBEAT_INTERVAL="1200"))
    assert check.verdict is Verdict.FAIL
    assert "lease (3630 s) >= BROKER_VISIBILITY_TIMEOUT" in check.evidence


# -- database -------------------------------------------------------------------------------

HEAD = "0011"
DB_URL = "postgresql://pa:****@db:5432/pa"


def _db(**overrides: Any) -> DatabaseFacts:
    """A healthy PostgreSQL at head, changed by ``overrides``."""
    fields: dict[str, Any] = dict(
        dialect="postgresql",
        url=DB_URL,
        reachable=True,
        latency_ms=0.84,
        version="15.4",
        revision=HEAD,
        head=HEAD,
        autovacuum={
            "ai_tasks": {"autovacuum_vacuum_scale_factor": "0.01", "vacuum_index_cleanup": "on"},
            "task_runs": {"autovacuum_vacuum_scale_factor": "0.05", "vacuum_index_cleanup": "on"},
        },
        idle_timeout_error=None,
        skew_s=0.1,
    )
    return DatabaseFacts(**(fields | overrides))


def _verdicts(checks: Iterable[Check]) -> dict[str, Verdict]:
    return {c.id: c.verdict for c in checks}


def test_a_healthy_database_passes_every_check() -> None:
    checks = database_checks.database_checks(_db())
    assert _verdicts(checks) == {
        "database.reachable": Verdict.PASS,
        "database.migrations": Verdict.PASS,
        "database.autovacuum": Verdict.PASS,
        "database.idle_timeout": Verdict.PASS,
        "database.clock_skew": Verdict.PASS,
    }
    reach = checks[0]
    assert "postgresql 15.4 at " + DB_URL in reach.evidence and "0.8 ms" in reach.evidence
    assert reach.figures == {"latency_ms": 0.84}
    assert checks[1].evidence == f"at {HEAD} (head)"
    assert checks[4].figures == {"skew_s": 0.1}


def test_an_unreachable_database_fails_once_and_skips_the_rest() -> None:
    facts = DatabaseFacts("postgresql", DB_URL, False, error="connection refused (127.0.0.1:5432)")
    checks = database_checks.database_checks(facts)
    assert checks[0].id == "database.reachable" and checks[0].verdict is Verdict.FAIL
    assert DB_URL in checks[0].evidence and "connection refused" in checks[0].evidence
    assert "DATABASE_URL" in checks[0].fix
    assert all(c.verdict is Verdict.SKIP for c in checks[1:])
    assert [c.id for c in checks[1:]] == [
        "database.migrations",
        "database.autovacuum",
        "database.idle_timeout",
        "database.clock_skew",
    ]


def test_a_schema_behind_head_fails_naming_both_revisions() -> None:
    check = database_checks.migrations(_db(revision="0009"))
    assert (check.id, check.verdict) == ("database.migrations", Verdict.FAIL)
    assert "0009" in check.evidence and HEAD in check.evidence
    assert "pa db upgrade" in check.fix


def test_a_never_migrated_database_fails() -> None:
    check = database_checks.migrations(_db(revision=None))
    assert check.verdict is Verdict.FAIL
    assert "never migrated" in check.evidence and check.fix == "pa db upgrade"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"ai_tasks": {}, "task_runs": {"autovacuum_vacuum_scale_factor": "0.01"}}, "ai_tasks"),
        ({"ai_tasks": {"autovacuum_vacuum_scale_factor": "0.01"}}, "task_runs"),
        (
            {
                "ai_tasks": {"autovacuum_vacuum_scale_factor": "0.01"},
                "task_runs": {"autovacuum_vacuum_scale_factor": "0.1"},
            },
            "task_runs.autovacuum_vacuum_scale_factor=0.1",
        ),
    ],
)
def test_autovacuum_left_at_default_warns_naming_the_table(
    options: dict[str, dict[str, str]], named: str
) -> None:
    check = database_checks.autovacuum(_db(autovacuum=options))
    assert (check.id, check.verdict) == ("database.autovacuum", Verdict.WARN)
    assert named in check.evidence
    assert "autovacuum_vacuum_scale_factor" in check.fix


def test_the_default_autovacuum_is_shown_as_the_default() -> None:
    check = database_checks.autovacuum(_db(autovacuum={}))
    assert check.evidence.count("default (0.2)") == 2
    assert check.evidence.count("vacuum_index_cleanup=default (auto)") == 2


def test_a_vacuum_that_may_skip_the_indexes_warns_naming_the_table() -> None:
    """Without ``vacuum_index_cleanup = on`` (migration 0016) a VACUUM after a claim of under
    2 % of the table's pages leaves the claim's dead entries where the idle tick reads."""
    options = {
        "ai_tasks": {"autovacuum_vacuum_scale_factor": "0.01", "vacuum_index_cleanup": "auto"},
        "task_runs": {"autovacuum_vacuum_scale_factor": "0.01", "vacuum_index_cleanup": "on"},
    }
    check = database_checks.autovacuum(_db(autovacuum=options))
    assert (check.id, check.verdict) == ("database.autovacuum", Verdict.WARN)
    assert check.evidence.startswith("ai_tasks.vacuum_index_cleanup=auto:"), check.evidence
    assert "task_runs" not in check.evidence
    assert "vacuum_index_cleanup = on" in check.fix


def test_index_cleanup_is_shown_when_the_options_are_right() -> None:
    check = database_checks.autovacuum(_db())
    assert check.verdict is Verdict.PASS
    assert check.evidence == (
        "vacuum scale factor: ai_tasks 0.01, task_runs 0.05; index cleanup: on"
    ), check.evidence


def test_autovacuum_is_skipped_off_postgresql() -> None:
    facts = _db(dialect="sqlite", version="", autovacuum={}, skew_s=None)
    assert _verdicts(database_checks.database_checks(facts)) == {
        "database.reachable": Verdict.PASS,
        "database.migrations": Verdict.PASS,
        "database.autovacuum": Verdict.SKIP,
        "database.idle_timeout": Verdict.SKIP,
        "database.clock_skew": Verdict.SKIP,
    }


def test_a_refused_idle_timeout_fails_quoting_the_server() -> None:
    error = 'unrecognized configuration parameter "idle_in_transaction_session_timeout"'
    check = database_checks.idle_timeout(_db(idle_timeout_error=error))
    assert (check.id, check.verdict) == ("database.idle_timeout", Verdict.FAIL)
    assert error in check.evidence and "transaction mode" in check.fix


@pytest.mark.parametrize(
    ("skew", "verdict"),
    [
        (0.1, Verdict.PASS),
        (-0.1, Verdict.PASS),
        (2.0, Verdict.PASS),
        (5.0, Verdict.WARN),
        (-5.0, Verdict.WARN),
        (2.01, Verdict.WARN),
    ],
)
def test_clock_skew_warns_beyond_two_seconds(skew: float, verdict: Verdict) -> None:
    check = database_checks.clock_skew(_db(skew_s=skew))
    assert (check.id, check.verdict) == ("database.clock_skew", verdict)
    assert f"{skew:+.3f} s" in check.evidence
    assert check.figures == {"skew_s": skew}
    if verdict is Verdict.WARN:
        assert "chrony" in check.fix


def test_a_reachable_database_without_figures_does_not_crash() -> None:
    facts = DatabaseFacts("postgresql", DB_URL, True, head=HEAD)  # every optional fact None
    checks = database_checks.database_checks(facts)
    assert _verdicts(checks)["database.reachable"] is Verdict.PASS
    assert _verdicts(checks)["database.clock_skew"] is Verdict.SKIP


@pytest.mark.parametrize(
    "check", [database_checks.autovacuum, database_checks.idle_timeout, database_checks.clock_skew]
)
def test_skips_of_an_unreachable_postgresql_say_it_is_unreachable(check: Any) -> None:
    result = check(DatabaseFacts("postgresql", DB_URL, False, error="timeout"))
    assert result.verdict is Verdict.SKIP
    assert result.evidence == "the database is unreachable"  # not "PostgreSQL only"


# -- broker ---------------------------------------------------------------------------------

REDIS_URL = "redis://:****@cache:6379/0"


def _queues(**depths: int) -> tuple[QueueFacts, ...]:
    return tuple(QueueFacts(q, depth=depths.get(q, 0)) for q in QUEUES)


def _redis(**overrides: Any) -> BrokerFacts:
    """A healthy Redis broker, changed by ``overrides``."""
    fields: dict[str, Any] = dict(
        kind="redis",
        url=REDIS_URL,
        reachable=True,
        rtt_ms=0.42,
        version="7.2.4",
        maxmemory_policy="noeviction",
        aof=True,
        rdb_save="3600 1",
        queues=_queues(),
    )
    return BrokerFacts(**(fields | overrides))


def test_a_healthy_redis_passes_every_check() -> None:
    checks = broker_checks.broker_checks(_redis())
    assert {c.verdict for c in checks} == {Verdict.PASS}
    assert [c.id for c in checks] == [
        "broker.reachable",
        "broker.eviction",
        "broker.persistence",
        *(f"broker.queue.{q}" for q in QUEUES),
    ]
    assert "redis 7.2.4 at " + REDIS_URL in checks[0].evidence
    assert checks[0].figures == {"rtt_ms": 0.42}
    assert "AOF on" in checks[2].evidence and "3600 1" in checks[2].evidence


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "allkeys-random"])
def test_an_evicting_redis_fails_naming_the_policy(policy: str) -> None:
    check = broker_checks.eviction(_redis(maxmemory_policy=policy))
    assert (check.id, check.verdict) == ("broker.eviction", Verdict.FAIL)
    assert f"maxmemory-policy is {policy}" in check.evidence
    assert "noeviction" in check.fix


@pytest.mark.parametrize(
    "facts",
    [
        _redis(reachable=False, error="refused"),
        BrokerFacts("amqp", "amqp://pa:****@rabbit//", True),
        BrokerFacts("embedded", "sqla+sqlite:////srv/var/broker.db", True),
    ],
)
def test_eviction_is_skipped_unless_a_reachable_redis(facts: BrokerFacts) -> None:
    assert broker_checks.eviction(facts).verdict is Verdict.SKIP


def test_an_unreachable_broker_fails_and_its_queues_skip() -> None:
    facts = _redis(reachable=False, error="Error 111 connecting to cache:6379", queues=())
    checks = broker_checks.broker_checks(facts)
    assert _verdicts(checks) == {
        "broker.reachable": Verdict.FAIL,
        "broker.eviction": Verdict.SKIP,
        "broker.persistence": Verdict.SKIP,
        "broker.queues": Verdict.SKIP,
    }
    assert REDIS_URL in checks[0].evidence and "Error 111" in checks[0].evidence
    assert "CELERY_BROKER_URL" in checks[0].fix


def test_a_redis_that_keeps_nothing_on_disk_says_so() -> None:
    check = broker_checks.persistence(_redis(aof=False, rdb_save=""))
    assert check.verdict is Verdict.PASS
    assert "keeps nothing on disk" in check.evidence


@pytest.mark.parametrize(
    ("depth", "verdict"), [(0, Verdict.PASS), (10_000, Verdict.PASS), (10_001, Verdict.WARN)]
)
def test_a_deep_queue_warns(depth: int, verdict: Verdict) -> None:
    checks = broker_checks.queues(_redis(queues=_queues(email_tasks=depth)))
    email = next(c for c in checks if c.id == "broker.queue.email_tasks")
    assert email.verdict is verdict
    assert email.figures == {"depth": depth}
    assert f"{depth} message(s) waiting" in email.evidence
    if verdict is Verdict.WARN:
        assert "email_tasks" in email.fix
    assert all(c.verdict is Verdict.PASS for c in checks if c is not email)


def test_an_undeclared_queue_warns_naming_it() -> None:
    queues = (*_queues()[:4], QueueFacts("maintenance_tasks", exists=False))
    check = broker_checks.queues(_redis(queues=queues))[-1]
    assert (check.id, check.verdict) == ("broker.queue.maintenance_tasks", Verdict.WARN)
    assert "maintenance_tasks" in check.evidence
    assert check.fix == "start a worker on it: pa worker -Q maintenance_tasks"


@pytest.mark.parametrize(("quorum", "kind"), [(False, "durable classic"), (True, "quorum")])
def test_a_rabbitmq_queue_declared_otherwise_fails_quoting_the_broker(
    quorum: bool, kind: str
) -> None:
    mismatch = "Queue.declare: (406) PRECONDITION_FAILED - inequivalent arg 'durable'"
    queues = (QueueFacts("ai_tasks", 3, 1, True, False, mismatch),)
    facts = BrokerFacts(
        "amqp", "amqp://pa:****@rabbit//", True, queues=queues, quorum_expected=quorum
    )
    check = broker_checks.queues(facts)[0]
    assert (check.id, check.verdict) == ("broker.queue.ai_tasks", Verdict.FAIL)
    assert mismatch in check.evidence and f"({kind})" in check.evidence
    assert "rabbitmqctl delete_queue ai_tasks" in check.fix


def test_a_rabbitmq_queue_as_configured_shows_consumers_and_kind() -> None:
    queues = (QueueFacts("ai_tasks", 7, 2, True, True),)
    facts = BrokerFacts(
        "amqp", "amqp://pa:****@rabbit//", True, queues=queues, quorum_expected=True
    )
    check = broker_checks.queues(facts)[0]
    assert check.verdict is Verdict.PASS
    assert check.evidence == "7 message(s) waiting, 2 consumer(s), durable quorum"


def test_the_embedded_broker_passes_reachable_and_persistence() -> None:
    facts = BrokerFacts("embedded", "sqla+sqlite:////srv/var/broker.db", True, queues=_queues())
    checks = broker_checks.broker_checks(facts)
    assert _verdicts(checks)["broker.reachable"] is Verdict.PASS
    assert "SQLite" in checks[0].evidence
    assert _verdicts(checks)["broker.persistence"] is Verdict.PASS


def test_an_embedded_broker_that_cannot_be_opened_fails() -> None:
    facts = BrokerFacts(
        "embedded", "sqla+sqlite:////srv/var/broker.db", False, "unable to open database file"
    )
    check = broker_checks.reachable(facts)
    assert check.verdict is Verdict.FAIL
    assert "unable to open database file" in check.evidence


# -- workers and scheduler ------------------------------------------------------------------


def worker(
    worker_id: str,
    silent_s: float = 1.0,
    queues: tuple[str, ...] = QUEUES,
    version: str | None = VERSION,
    **config: Any,
) -> ProcessBeat:
    return ProcessBeat(
        worker_id,
        ProcessRole.WORKER,
        ago(silent_s),
        ago(3600 * 5),
        queues,
        version,
        GOOD_CONFIG | config,
    )


def scheduler(
    worker_id: str = "beat@h1", silent_s: float = 1.0, version: str = VERSION
) -> ProcessBeat:
    return ProcessBeat(worker_id, ProcessRole.SCHEDULER, ago(silent_s), ago(3600), (), version, {})


def snap(*processes: ProcessBeat, **overrides: Any) -> Snapshot:
    fields: dict[str, Any] = dict(
        taken_at=NOW,
        open_runs={},
        oldest_queued_at=None,
        most_overdue_at=None,
        expired_running=0,
        last_finished_at=None,
        active_tasks=3,
        processes=processes,
    )
    return Snapshot(**(fields | overrides))


HEALTHY = snap(worker("w1@h1"), worker("w2@h2"), scheduler())
ANSWERED = RemoteFacts(True, "", {"w1@h1": QUEUES, "w2@h2": QUEUES})


def test_a_healthy_system_passes_every_process_check() -> None:
    checks = process_checks.process_checks(HEALTHY, BOUNDS, VERSION, ANSWERED)
    assert _verdicts(checks) == {
        "workers.consumers": Verdict.PASS,
        "workers.versions": Verdict.PASS,
        "workers.settings": Verdict.PASS,
        "workers.stalled": Verdict.PASS,
        "workers.remote": Verdict.PASS,
        "scheduler.alive": Verdict.PASS,
        "scheduler.overdue": Verdict.PASS,
        "scheduler.waiting": Verdict.PASS,
        "scheduler.leases": Verdict.PASS,
    }
    by_id = {c.id: c for c in checks}
    assert by_id["workers.consumers"].evidence == "workers per queue: " + ", ".join(
        f"{q} 2" for q in QUEUES
    )
    assert by_id["workers.versions"].evidence == f"3 process(es) on {VERSION}"
    assert by_id["workers.settings"].evidence.startswith("2 worker(s)")


def test_an_empty_snapshot_does_not_crash() -> None:
    checks = process_checks.process_checks(snap(), BOUNDS, VERSION, RemoteFacts(True))
    assert _verdicts(checks) == {
        "workers.consumers": Verdict.FAIL,
        "workers.versions": Verdict.SKIP,
        "workers.settings": Verdict.SKIP,
        "workers.stalled": Verdict.PASS,
        "workers.remote": Verdict.PASS,
        "scheduler.alive": Verdict.FAIL,
        "scheduler.overdue": Verdict.PASS,
        "scheduler.waiting": Verdict.PASS,
        "scheduler.leases": Verdict.PASS,
    }
    assert all(q in checks[0].evidence for q in QUEUES)


def _missing_part(check: Check) -> str:
    """``sync_tasks`` of ``no live worker consumes sync_tasks (workers per queue: ...)``."""
    return check.evidence.removeprefix("no live worker consumes ").split(" (", 1)[0]


def test_a_queue_no_live_worker_consumes_fails_naming_only_it() -> None:
    others = tuple(q for q in QUEUES if q != "sync_tasks")
    snapshot = snap(worker("w1@h1", queues=others), worker("w2@h2", queues=("ai_tasks",)))
    check = process_checks.consumers(snapshot, BOUNDS)
    assert (check.id, check.verdict) == ("workers.consumers", Verdict.FAIL)
    assert _missing_part(check) == "sync_tasks"
    assert "sync_tasks 0" in check.evidence and "ai_tasks 2" in check.evidence
    assert check.fix == "start a worker on it: pa worker -Q sync_tasks"


def test_a_stale_worker_is_no_consumer() -> None:
    snapshot = snap(worker("w1@h1", queues=QUEUES[1:]), worker("old@h9", silent_s=31))
    check = process_checks.consumers(snapshot, BOUNDS)
    assert check.verdict is Verdict.FAIL and _missing_part(check) == "ai_tasks"


def test_a_worker_just_within_the_heartbeat_bound_is_a_consumer() -> None:
    check = process_checks.consumers(snap(worker("w1@h1", silent_s=30)), BOUNDS)
    assert check.verdict is Verdict.PASS


def test_versions_differing_between_workers_fail_naming_each() -> None:
    snapshot = snap(worker("w1@h1"), worker("w2@h2", version="1.3.9"), scheduler())
    check = process_checks.versions(snapshot, BOUNDS, VERSION)
    assert (check.id, check.verdict) == ("workers.versions", Verdict.FAIL)
    assert "2 versions" in check.evidence
    assert "w2@h2 1.3.9" in check.evidence and f"w1@h1 {VERSION}" in check.evidence


def test_a_scheduler_on_another_version_fails_versions() -> None:
    snapshot = snap(worker("w1@h1"), scheduler(version="1.3.9"))
    check = process_checks.versions(snapshot, BOUNDS, VERSION)
    assert check.verdict is Verdict.FAIL and "beat@h1 1.3.9" in check.evidence


def test_a_process_without_a_version_differs_from_one_with() -> None:
    check = process_checks.versions(
        snap(worker("w1@h1"), worker("w2@h2", version=None)), BOUNDS, VERSION
    )
    assert check.verdict is Verdict.FAIL and "w2@h2 unknown" in check.evidence


def test_one_version_everywhere_but_not_doctors_warns() -> None:
    snapshot = snap(worker("w1@h1", version="1.5.0"), scheduler(version="1.5.0"))
    check = process_checks.versions(snapshot, BOUNDS, VERSION)
    assert (check.id, check.verdict) == ("workers.versions", Verdict.WARN)
    assert "1.5.0" in check.evidence and VERSION in check.evidence


def test_a_stale_process_does_not_count_for_versions() -> None:
    snapshot = snap(worker("w1@h1"), worker("old@h9", silent_s=120, version="0.9.0"))
    assert process_checks.versions(snapshot, BOUNDS, VERSION).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("task_acks_late", False),
        ("task_reject_on_worker_lost", False),
        ("worker_prefetch_multiplier", 4),
        ("task_serializer", "pickle"),
        ("accept_content", ["json", "pickle"]),
        ("task_acks_late", None),
    ],
)
def test_a_worker_without_the_delivery_settings_fails_naming_worker_and_setting(
    setting: str, value: Any
) -> None:
    snapshot = snap(worker("w1@h1"), worker("w2@h2", **{setting: value}))
    check = process_checks.delivery_settings(snapshot, BOUNDS)
    assert (check.id, check.verdict) == ("workers.settings", Verdict.FAIL)
    assert check.evidence == f"w2@h2 {setting}={value!r} (needs {REQUIRED[setting]!r})"
    assert "w1@h1" not in check.evidence


def test_a_worker_reporting_no_settings_fails_on_each() -> None:
    bare = ProcessBeat("w1@h1", ProcessRole.WORKER, ago(1), ago(60), QUEUES, VERSION, {})
    check = process_checks.delivery_settings(snap(bare), BOUNDS)
    assert check.verdict is Verdict.FAIL
    assert all(f"{name}=None" in check.evidence for name in REQUIRED)


def test_delivery_settings_skip_without_a_live_worker() -> None:
    snapshot = snap(worker("old@h9", silent_s=120, task_acks_late=False), scheduler())
    assert process_checks.delivery_settings(snapshot, BOUNDS).verdict is Verdict.SKIP


def test_a_silent_row_warns_stalled_naming_it() -> None:
    snapshot = snap(worker("w1@h1"), worker("w2@h2", silent_s=120), scheduler())
    check = process_checks.stalled(snapshot, BOUNDS)
    assert (check.id, check.verdict) == ("workers.stalled", Verdict.WARN)
    assert check.evidence == "worker w2@h2 silent for 120 s"
    assert "restart it" in check.fix


def test_a_silent_worker_holding_running_runs_fails_stalled() -> None:
    load = WorkerLoad("w2@h2", 3, ago(120), ago(200))
    snapshot = snap(worker("w1@h1"), worker("w2@h2", silent_s=120), workers=(load,))
    check = process_checks.stalled(snapshot, BOUNDS)
    assert (check.id, check.verdict) == ("workers.stalled", Verdict.FAIL)
    assert check.evidence == "worker w2@h2 silent for 120 s, holding 3 running run(s)"


def test_a_live_worker_holding_runs_is_not_stalled() -> None:
    load = WorkerLoad("w1@h1", 5, ago(1), ago(200))
    check = process_checks.stalled(snap(worker("w1@h1"), workers=(load,)), BOUNDS)
    assert check.verdict is Verdict.PASS


def test_a_silent_scheduler_warns_stalled() -> None:
    check = process_checks.stalled(snap(worker("w1@h1"), scheduler(silent_s=90)), BOUNDS)
    assert check.verdict is Verdict.WARN and check.evidence == "scheduler beat@h1 silent for 90 s"


@pytest.mark.parametrize(
    ("silent", "verdict"),
    [
        (30.0, Verdict.PASS),
        (31.0, Verdict.WARN),
        (FORGET_AFTER_S, Verdict.WARN),
        (FORGET_AFTER_S + 1, Verdict.PASS),
        (86_000.0, Verdict.PASS),
    ],
)
def test_rows_silent_longer_than_forget_after_are_history(silent: float, verdict: Verdict) -> None:
    check = process_checks.stalled(snap(worker("w1@h1", silent_s=silent)), BOUNDS)
    assert check.verdict is verdict


def test_remote_control_with_fewer_answers_than_beating_workers_warns() -> None:
    remote = RemoteFacts(True, "", {"w1@h1": QUEUES})
    check = process_checks.remote_control(HEALTHY, BOUNDS, remote)
    assert (check.id, check.verdict) == ("workers.remote", Verdict.WARN)
    assert "1 worker(s) answered, 2 beat in the database" in check.evidence
    assert "inspect ping" in check.fix


def test_remote_control_counts_only_live_beating_workers() -> None:
    snapshot = snap(worker("w1@h1"), worker("old@h9", silent_s=120), scheduler())
    remote = RemoteFacts(True, "", {"w1@h1": QUEUES})
    assert process_checks.remote_control(snapshot, BOUNDS, remote).verdict is Verdict.PASS


def test_remote_control_unsupported_skips() -> None:
    check = process_checks.remote_control(HEALTHY, BOUNDS, RemoteFacts(supported=False))
    assert (check.id, check.verdict) == ("workers.remote", Verdict.SKIP)
    assert "embedded broker" in check.evidence


def test_a_failed_broadcast_warns_quoting_it() -> None:
    remote = RemoteFacts(True, "timed out")
    check = process_checks.remote_control(HEALTHY, BOUNDS, remote)
    assert check.verdict is Verdict.WARN and "broadcast failed: timed out" in check.evidence


def test_a_failed_broadcast_says_what_to_do() -> None:
    check = process_checks.remote_control(HEALTHY, BOUNDS, RemoteFacts(True, "timed out"))
    assert check.fix


def test_remote_control_not_asked_does_not_blame_the_embedded_broker() -> None:
    # run.py passes None for --quick and for an unreachable broker (embedded: supported=False).
    check = process_checks.remote_control(HEALTHY, BOUNDS, None)
    assert check.verdict is Verdict.SKIP
    assert "not asked" in check.evidence and "embedded" not in check.evidence


def test_no_scheduler_row_fails_scheduler_alive() -> None:
    check = process_checks.scheduler_alive(snap(worker("w1@h1")), BOUNDS)
    assert (check.id, check.verdict) == ("scheduler.alive", Verdict.FAIL)
    assert "30 s" in check.evidence and "pa beat" in check.fix


def test_a_stale_scheduler_row_fails_scheduler_alive() -> None:
    check = process_checks.scheduler_alive(snap(scheduler(silent_s=31)), BOUNDS)
    assert check.verdict is Verdict.FAIL


def test_the_freshest_scheduler_is_reported() -> None:
    snapshot = snap(scheduler("b1", silent_s=12), scheduler("b2", silent_s=2.5))
    check = process_checks.scheduler_alive(snapshot, BOUNDS)
    assert check.verdict is Verdict.PASS
    assert check.evidence == "2 scheduler(s), last tick report 2.5 s ago"


@pytest.mark.parametrize(
    ("check", "field", "bound", "figure"),
    [
        (process_checks.overdue, "most_overdue_at", BOUNDS.max_overdue_s, "overdue_s"),
        (process_checks.waiting, "oldest_queued_at", BOUNDS.max_queue_age_s, "waiting_s"),
        (process_checks.leases, "oldest_expired_lease_at", BOUNDS.reaper_grace_s, None),
    ],
)
def test_scheduler_bounds_pass_just_under_and_fail_just_over(
    check: Any, field: str, bound: float, figure: str | None
) -> None:
    under = check(snap(expired_running=2, **{field: ago(bound - 0.5)}), BOUNDS)
    at = check(snap(expired_running=2, **{field: ago(bound)}), BOUNDS)
    over = check(snap(expired_running=2, **{field: ago(bound + 1)}), BOUNDS)
    assert under.verdict is at.verdict is Verdict.PASS
    assert over.verdict is Verdict.FAIL and under.id == over.id
    assert f"{bound + 1:.0f} s" in over.evidence and over.fix
    if figure:
        assert over.figures == {figure: bound + 1}


def test_overdue_evidence_names_the_bound_and_the_scheduler() -> None:
    check = process_checks.overdue(snap(most_overdue_at=ago(95)), BOUNDS)
    assert check.id == "scheduler.overdue"
    assert check.evidence == "a task is 95 s overdue (bound 30 s)"
    assert "pa beat" in check.fix


def test_waiting_evidence_names_the_bound_and_the_workers() -> None:
    check = process_checks.waiting(snap(oldest_queued_at=ago(300)), BOUNDS)
    assert check.id == "scheduler.waiting"
    assert check.evidence == "a run has waited 300 s for a worker (bound 60 s)"
    assert "ai_tasks" in check.fix


def test_unreaped_leases_fail_naming_the_count_and_the_reaper() -> None:
    check = process_checks.leases(snap(expired_running=4, oldest_expired_lease_at=ago(600)), BOUNDS)
    assert check.id == "scheduler.leases"
    assert check.evidence.startswith("4 running run(s) hold an expired lease")
    assert "600 s" in check.evidence and "reaper" in check.evidence
    assert "maintenance_tasks" in check.fix


def test_nothing_queued_or_overdue_passes() -> None:
    assert process_checks.overdue(snap(), BOUNDS).evidence == "most overdue: none"
    assert process_checks.waiting(snap(), BOUNDS).evidence == "none queued"
    assert process_checks.leases(snap(), BOUNDS).evidence.startswith("0 expired lease(s)")


def test_a_timestamp_in_the_future_counts_as_zero() -> None:
    check = process_checks.waiting(snap(oldest_queued_at=NOW + timedelta(seconds=5)), BOUNDS)
    assert check.verdict is Verdict.PASS and check.evidence == "oldest queued 0.0 s"


# -- canaries -------------------------------------------------------------------------------


def _ms(milliseconds: float) -> datetime:
    return NOW + timedelta(milliseconds=milliseconds)


DELIVERED = RunTrace(
    state="succeeded",
    scheduled_for=NOW,
    queued_at=_ms(5),
    published_at=_ms(7),
    started_at=_ms(20),
    finished_at=_ms(120),
    delivered_at=_ms(150),
    attempts=1,
    waited_s=1.3,
)


def test_a_delivered_canary_passes_with_stage_latencies() -> None:
    check = canary_checks.canary(DELIVERED)
    assert (check.id, check.verdict) == ("canary.run", Verdict.PASS)
    assert check.figures == {
        "queued_ms": 5.0,
        "published_ms": 2.0,
        "running_ms": 13.0,
        "succeeded_ms": 100.0,
        "notified_ms": 30.0,
        "due_to_notified_ms": 150.0,
    }
    assert "queued +5 ms, published +2 ms, running +13 ms, succeeded +100 ms" in check.evidence
    assert "notified 150 ms after due" in check.evidence


def test_a_canary_left_queued_fails_saying_no_worker_took_it() -> None:
    trace = RunTrace(
        state="queued", scheduled_for=NOW, queued_at=_ms(4), waited_s=60.2, timed_out=True
    )
    check = canary_checks.canary(trace)
    assert (check.id, check.verdict) == ("canary.run", Verdict.FAIL)
    assert check.evidence == (
        "after 60 s: the run stayed queued: no worker took it (is one consuming ai_tasks?)"
    )
    assert check.figures == {"queued_ms": 4.0}
    assert "pa status" in check.fix


def test_a_canary_without_a_run_fails_naming_the_scheduler() -> None:
    check = canary_checks.canary(RunTrace(waited_s=60.0, timed_out=True))
    assert check.verdict is Verdict.FAIL
    assert "no run was made" in check.evidence and "scheduler" in check.evidence
    assert check.figures == {}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"state": "running", "finished_at": None, "delivered_at": None}, "did not finish"),
        (
            {"state": "failed", "delivered_at": None, "error": "agent 503"},
            "ended failed: agent 503",
        ),
        ({"delivered_at": None}, "notification was not delivered"),
    ],
)
def test_a_canary_stopped_midway_fails_naming_the_stage(changes: dict[str, Any], says: str) -> None:
    from dataclasses import replace

    check = canary_checks.canary(replace(DELIVERED, timed_out=True, **changes))
    assert check.verdict is Verdict.FAIL and says in check.evidence


@pytest.mark.parametrize(
    ("attempts", "error", "verdict"),
    [
        (2, "pa doctor: a failure on purpose", Verdict.PASS),
        (3, "x\ntraceback", Verdict.PASS),
        (1, "pa doctor: a failure on purpose", Verdict.FAIL),
        (2, None, Verdict.FAIL),
    ],
)
def test_a_failing_canary_passes_only_after_a_retry_and_an_error(
    attempts: int, error: str | None, verdict: Verdict
) -> None:
    trace = RunTrace(state="failed", attempts=attempts, error=error, waited_s=21.0)
    check = canary_checks.failing_canary(trace)
    assert (check.id, check.verdict) == ("canary.failure", verdict)
    if verdict is Verdict.PASS:
        assert f"attempt {attempts}" in check.evidence
        assert check.evidence.endswith(f": {error.splitlines()[0]}")  # type: ignore[union-attr]
        assert check.figures == {"attempts": attempts}
    else:
        assert f"{attempts} attempt(s)" in check.evidence and "RETRY_BASE_SECONDS" in check.fix


def test_a_failing_canary_that_never_ends_fails() -> None:
    trace = RunTrace(state="retrying", attempts=1, waited_s=60.0, timed_out=True)
    check = canary_checks.failing_canary(trace)
    assert check.verdict is Verdict.FAIL and "state retrying" in check.evidence


LATENESS = tuple(n / 1000 for n in range(200))  # 0 to 199 ms, sorted as canary.burst sorts them


def test_a_complete_burst_passes_with_throughput_and_lateness() -> None:
    check = canary_checks.burst(Burst(200, 200, LATENESS, 2.0, False))
    assert (check.id, check.verdict) == ("canary.burst", Verdict.PASS)
    assert check.title == "200 runs due at once"
    assert check.figures == {
        "runs_per_s": 100.0,
        "lateness_p50_ms": 100.0,
        "lateness_p99_ms": 198.0,
    }
    assert check.evidence == (
        "200/200 finished 2.00 s after their time (100 runs/s), lateness p50 100 ms, p99 198 ms"
    )


def test_a_burst_that_timed_out_fails() -> None:
    check = canary_checks.burst(Burst(200, 150, LATENESS[:150], 60.0, True))
    assert (check.id, check.verdict) == ("canary.burst", Verdict.FAIL)
    assert check.evidence.startswith("150/200 finished")
    assert "add workers on ai_tasks" in check.fix


@pytest.mark.parametrize("burst", [Burst(10, 0, (), 0.0, True), Burst(1, 1, (0.01,), 0.0, False)])
def test_a_burst_without_duration_or_runs_does_not_crash(burst: Burst) -> None:
    check = canary_checks.burst(burst)
    assert check.verdict is (Verdict.FAIL if burst.timed_out else Verdict.PASS)
    assert check.figures["runs_per_s"] == burst.finished


def test_a_queue_shows_how_long_its_oldest_message_has_waited() -> None:
    queues = (QueueFacts("sync_tasks", 3, oldest_age_s=12.34),)
    check = broker_checks.queues(_redis(queues=queues))[0]
    assert check.verdict is Verdict.PASS
    assert check.evidence == "3 message(s) waiting, the oldest for 12.3 s"
    assert check.figures == {"depth": 3.0, "oldest_s": 12.3}


def test_a_queue_whose_oldest_message_waited_over_a_minute_warns() -> None:
    just_under = broker_checks.queues(
        _redis(queues=(QueueFacts("sync_tasks", 1, oldest_age_s=59.9),))
    )[0]
    assert just_under.verdict is Verdict.PASS
    over = broker_checks.queues(_redis(queues=(QueueFacts("sync_tasks", 1, oldest_age_s=61),)))[0]
    assert over.verdict is Verdict.WARN
    assert "the oldest for 61.0 s" in over.evidence
    assert "sync_tasks" in over.fix
