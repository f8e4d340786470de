"""Clocks 2 minutes off: leases and due times must not depend on each host's clock (issue 9,
item 8).

Beat and one worker run with their clock 2 minutes ahead, another worker 2 minutes behind
(an injected clock, :mod:`chaos.skewed_clock`: the project's one reading of the host's time is
moved in those processes). PostgreSQL,
Redis, the webhook, the chat server (the agent) and this test keep the true time. The one-shot
load must run as usual: every firing once, the agent called once per attempt and once per run
(a lease cut short by a skewed clock would have another worker call it again), and no run's
agent called before the firing's instant (a scheduler ahead would fire early).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chaos import report
from chaos.harness import Chaos, seed_one_shots_spread_bulk
from support.chat_server import AlwaysAnswer

SKEW_S = 120
#: How early (by the true clock) an agent call may come before its firing and still count as
#: on time: the scheduler's tick and the test's clock reads.
EARLY_SLACK = timedelta(seconds=1)
PROCESSES = ("beat", "ahead", "behind")


def _skewed(seconds: int) -> tuple[str, ...]:
    return ("-m", "chaos.skewed_clock", str(seconds))


def test_clock_skew_2_min(chaos: Chaos) -> None:
    with AlwaysAnswer(delay=1.0) as server:
        chaos.env.update({"AGENT": "openai", "AGENT_BASE_URL": server.base_url})
        chaos.env["HEARTBEAT_INTERVAL"] = "1"
        chaos.beat(runner=_skewed(SKEW_S))
        chaos.worker("ahead", runner=_skewed(SKEW_S))
        chaos.worker("behind", runner=_skewed(-SKEW_S))
        chaos.wait_ready("ahead")
        chaos.wait_ready("behind")
        load = seed_one_shots_spread_bulk(
            chaos, 30, start=datetime.now(UTC) + timedelta(seconds=5), spread=timedelta(seconds=6)
        )
        settled = chaos.settle(load, timeout=90)
        due = {
            int(r.id): r.scheduled_for
            for r in chaos.db.rows(
                "SELECT id, scheduled_for FROM task_runs WHERE task_id = ANY(:ids)",
                ids=list(load.fires_at),
            )
        }
        early = sorted(
            round((due[run] - datetime.fromtimestamp(r.wall, UTC)).total_seconds(), 1)
            for r in server.received
            if (run := _run_of(r.headers.get("x-pa-run", ""))) in due
            and datetime.fromtimestamp(r.wall, UTC) < due[run] - EARLY_SLACK
        )
        outcome = chaos.outcome(
            load,
            None,
            notes=(
                f"beat and a worker {SKEW_S} s ahead, a worker {SKEW_S} s behind; "
                f"{len(early)} agent calls before their firing"
            ),
            agent=server,
        )
    outcome.notes += (
        f"; agent called {outcome.extra['agent_calls']} times for {outcome.scheduled} runs"
    )
    outcome.extra.update(early_s=early[-5:])
    report.record(outcome)
    assert settled, chaos.logs(*PROCESSES)
    assert outcome.clean, outcome
    assert outcome.agent_calls_per_attempt == 1, outcome
    assert outcome.extra["retried"] == 0, outcome
    assert outcome.extra["agent_calls"] == len(load.fires_at), outcome
    assert not early, f"{len(early)} agent calls came early, by up to {max(early)} s"


def _run_of(header: str) -> int | None:
    run, _, _ = header.partition("/")
    return int(run) if run.isdigit() else None
