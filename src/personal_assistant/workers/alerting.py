"""The alert evaluator on the deployment: the facts read at ``now`` (the deployment's figures,
:mod:`.deployment`, and the runs' rates, :mod:`personal_assistant.alerts.facts`), and one
evaluation of them (:func:`personal_assistant.alerts.evaluate.evaluate`), as ``evaluate_alerts``
on ``maintenance_tasks`` runs it and ``pa alerts list`` reads it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from personal_assistant.alerts import run
from personal_assistant.alerts.evaluate import Evaluation, evaluate
from personal_assistant.alerts.facts import read_rates
from personal_assistant.alerts.rules import Facts
from personal_assistant.config import Settings
from personal_assistant.core.states import ProcessRole
from personal_assistant.workers.deployment import read_figures

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["evaluate_now", "read_facts"]


async def read_facts(settings: Settings, engine: AsyncEngine, now: datetime, app: Celery) -> Facts:
    figures = await read_figures(settings, engine, now, app)
    rates = await read_rates(engine, now, window=run.window(settings))
    return Facts(
        consumers=figures.consumers,
        schedulers_live=figures.live.get(ProcessRole.SCHEDULER.value, 0),
        scheduler_age_s=figures.scheduler_age_s,
        broker_up=figures.broker_up,
        oldest_queued_age_s=figures.oldest_queued_age_s,
        tasks_overdue=figures.tasks_overdue,
        channels_broken=figures.channels_broken,
        oldest_message_age_s=figures.oldest_message_age_s,
        lateness_s=rates.lateness_s,
        finished=rates.finished,
        failed=rates.failed,
        attempts=rates.attempts,
        attempt_errors=rates.attempt_errors,
    )


async def evaluate_now(
    settings: Settings, engine: AsyncEngine, now: datetime, app: Celery
) -> Evaluation:
    """Read the facts at ``now`` and evaluate the rules on them (one transaction)."""
    facts = await read_facts(settings, engine, now, app)
    return await evaluate(engine, facts, run.thresholds(settings), run.timing(settings), now)
