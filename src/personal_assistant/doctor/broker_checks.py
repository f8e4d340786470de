"""Verdicts on the broker (pure): reachable, no eviction, persistence stated, every queue
declared as configured, depths."""

from __future__ import annotations

from personal_assistant.doctor.report import Check, failed, passed, skipped, warned
from personal_assistant.workers.broker_facts import BrokerFacts, QueueFacts

#: A queue deeper than this is worth a warning (the workers are behind).
DEEP_QUEUE = 10_000
#: A message older than this is worth a warning (nobody takes from that queue).
OLD_MESSAGE_S = 60.0


def reachable(facts: BrokerFacts) -> Check:
    title = "The broker answers"
    if not facts.reachable:
        fix = (
            "check that PA_HOME/var is writable and its disk not full"
            if facts.kind == "embedded"
            else "start the broker or fix CELERY_BROKER_URL / REDIS_URL"
        )
        return failed(
            "broker.reachable",
            title,
            f"{facts.kind} broker at {facts.url} is unreachable: {facts.error}",
            f"{fix}; nothing is dispatched until it answers (owed runs are kept in the database)",
        )
    if facts.kind == "embedded":
        return passed("broker.reachable", title, f"embedded broker (SQLite) at {facts.url}")
    version = f" {facts.version}" if facts.version else ""
    rtt = facts.rtt_ms or 0.0
    return passed(
        "broker.reachable",
        title,
        f"{facts.kind}{version} at {facts.url}, round trip {rtt:.1f} ms",
        rtt_ms=round(rtt, 2),
    )


def eviction(facts: BrokerFacts) -> Check:
    title = "Redis never evicts queued messages (maxmemory-policy)"
    if facts.kind != "redis":
        return skipped("broker.eviction", title, "Redis only")
    if not facts.reachable:
        return skipped("broker.eviction", title, "the broker is unreachable")
    if facts.maxmemory_policy == "noeviction":
        return passed("broker.eviction", title, "maxmemory-policy is noeviction")
    if not facts.maxmemory_policy:
        return warned(
            "broker.eviction",
            title,
            "could not read maxmemory-policy (CONFIG is disabled or renamed on this server)",
            "make sure the provider's setting is noeviction (an evicting policy drops queued "
            "messages)",
        )
    return failed(
        "broker.eviction",
        title,
        f"maxmemory-policy is {facts.maxmemory_policy}: under memory pressure Redis drops "
        "keys, queued messages among them",
        "redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf: "
        "maxmemory-policy noeviction)",
    )


def persistence(facts: BrokerFacts) -> Check:
    title = "Broker persistence"
    if facts.kind == "embedded":
        return passed("broker.persistence", title, "embedded broker: a SQLite file on disk")
    if facts.kind == "amqp":
        return passed(
            "broker.persistence",
            title,
            "RabbitMQ: durable queues and persistent messages survive a restart",
        )
    if not facts.reachable:
        return skipped("broker.persistence", title, "the broker is unreachable")
    kept = []
    if facts.aof:
        kept.append("AOF on")
    if facts.rdb_save:
        kept.append(f"RDB snapshots ({facts.rdb_save})")
    if kept:
        return passed("broker.persistence", title, "Redis keeps data: " + ", ".join(kept))
    return passed(
        "broker.persistence",
        title,
        "Redis keeps nothing on disk: a restart drops queued messages, and the database "
        "re-dispatches every owed run after DISPATCH_LEASE (nothing is lost, runs are late)",
    )


def queues(facts: BrokerFacts) -> list[Check]:
    """One check per queue: declared as configured (RabbitMQ) and its depth."""
    if not facts.reachable:
        return [skipped("broker.queues", "The five queues", "the broker is unreachable")]
    return [_queue_check(facts, q) for q in facts.queues]


def _queue_check(facts: BrokerFacts, queue: QueueFacts) -> Check:
    check_id, title = f"broker.queue.{queue.name}", f"Queue {queue.name}"
    if not queue.exists:
        return warned(
            check_id,
            title,
            f"{queue.name} is not declared on the broker: no worker has consumed it yet",
            f"start a worker on it: pa worker -Q {queue.name}",
        )
    if queue.declared_as_configured is False:
        kind = "quorum" if facts.quorum_expected else "durable classic"
        return failed(
            check_id,
            title,
            f"{queue.name} is not declared as the workers declare it ({kind}): {queue.mismatch}",
            f"delete the queue (rabbitmqctl delete_queue {queue.name}; its messages are "
            "re-dispatched from the database) and restart a worker, which declares it again",
        )
    consumers = "" if queue.consumers is None else f", {queue.consumers} consumer(s)"
    depth = queue.depth or 0
    age = queue.oldest_age_s
    oldest = "" if age is None else f", the oldest for {age:.1f} s"
    evidence = f"{depth} message(s) waiting{oldest}{consumers}"
    if facts.kind == "amqp":
        evidence += ", durable" + (" quorum" if facts.quorum_expected else " classic")
    if age is not None and age > OLD_MESSAGE_S:
        return warned(
            check_id,
            title,
            evidence,
            f"no worker is taking messages from {queue.name} fast enough: see "
            "workers.consumers, and add workers on it",
            depth=depth,
            oldest_s=round(age, 1),
        )
    if depth > DEEP_QUEUE:
        return warned(
            check_id,
            title,
            evidence,
            f"the workers are behind: add workers on {queue.name}",
            depth=depth,
        )
    figures = {"depth": float(depth)} | ({} if age is None else {"oldest_s": round(age, 1)})
    return passed(check_id, title, evidence, **figures)


def broker_checks(facts: BrokerFacts) -> list[Check]:
    return [reachable(facts), eviction(facts), persistence(facts), *queues(facts)]
