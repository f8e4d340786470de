"""The run messages ``publish_runs`` sends, read back from a real Redis list.

``publish_runs`` builds its messages with Celery's ``app.amqp`` (routed and declared once per
call, not once per message as ``send_task`` does): each must still be the message a worker of
``execute_ai_task`` reads, with what Flower and ``pa doctor`` read of it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from personal_assistant.workers.celery_app import SENT_AT_HEADER
from personal_assistant.workers.dispatch import describe_runs, publish_runs
from personal_assistant.workers.task_names import TaskName
from support.celery_messages import message_body
from support.services import REDIS_URL
from support.stack import client_app, settings_for

pytestmark = pytest.mark.integration


def _messages(redis_prefix: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        raw = client.lrange(f"{redis_prefix}ai_tasks", 0, -1)
    finally:
        client.close()
    return [json.loads(item) for item in reversed(raw)]  # LPUSH: the oldest is last


def test_each_message_carries_its_runs_to_execute_ai_task(
    database_url: str, redis_prefix: str
) -> None:
    settings = settings_for(
        {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": redis_prefix}
    )
    app = client_app(settings)
    run_ids = list(range(1, 8))
    assert publish_runs(app, run_ids, per_message=3) == 3
    assert publish_runs(app, [], per_message=3) == 0
    messages = _messages(redis_prefix)
    assert len(messages) == 3
    sent = [[1, 2, 3], [4, 5, 6], [7]]
    for message, ids in zip(messages, sent, strict=True):
        args, kwargs, _embed = message_body(message)
        assert (args, kwargs) == ([ids], {})
        headers = message["headers"]
        assert headers["task"] == TaskName.EXECUTE_AI_TASK
        assert headers["argsrepr"] == describe_runs(ids)
        assert headers["ignore_result"] is True
        assert isinstance(headers[SENT_AT_HEADER], float)
        assert message["properties"]["delivery_info"]["routing_key"] == "ai_tasks"
        assert message["properties"]["reply_to"] == ""  # results live in the database
    assert len({m["headers"]["id"] for m in messages}) == 3
