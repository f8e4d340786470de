"""The baseline of the latency-bound figure: Celery's prefork pool, one agent call per task.

Configured like the project's app (``celery_config(settings)``: broker, Redis result backend,
prefetch 1, ``acks_late``), with one task that makes the same chat-completions call as the
OpenAI-compatible agent (the same prompt from ``build_messages``, the same reply parsing), but
synchronously with ``httpx``: the way a Celery task is usually written. Run with
``celery -A benchmarks.prefork_app worker -P prefork -c N -Q ai_tasks``; the server's base URL
is ``AGENT_BASE_URL`` in the worker's environment, read when the first task runs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import httpx

from personal_assistant.agents.base import AgentRequest
from personal_assistant.agents.openai_compat import parse_reply
from personal_assistant.agents.prompt import build_messages
from personal_assistant.workers.celery_app import PersonalAssistantCelery

CALL = "benchmarks.prefork_app.call_agent"
QUEUE = "ai_tasks"  # the config's default queue: the task has no route
MODEL = "slow-bench-model"

app = PersonalAssistantCelery("bench_prefork", task_modules=())

_clients: dict[int, httpx.Client] = {}  # one keep-alive client per (forked) process


def _client() -> httpx.Client:
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = httpx.Client(timeout=30.0)
    return _clients[pid]


def payload(run_id: int) -> dict[str, object]:
    now = datetime.now(UTC)
    request = AgentRequest(
        task_id=run_id,
        run_id=run_id,
        title=f"bench task {run_id}",
        instruction="Summarise what happened since the last run.",
        task_type="reminder",
        ai_context={},
        owner_name="bench user",
        timezone="UTC",
        scheduled_for=now,
        local_time=now,
        attempt=1,
    )
    return {
        "model": MODEL,
        "messages": build_messages(request),
        "max_tokens": 800,
        "temperature": 0.3,
    }


@app.task(name=CALL, shared=False)
def call_agent(run_id: int) -> str:
    """One agent call, waited for by this process: the pool's slot is busy all along."""
    url = os.environ["AGENT_BASE_URL"].rstrip("/") + "/chat/completions"
    response = _client().post(url, json=payload(run_id))
    response.raise_for_status()
    return parse_reply(response.content, MODEL).text
