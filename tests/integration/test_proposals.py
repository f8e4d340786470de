"""Tasks said in plain English on real databases: ``propose_task``, ``create_task_from_text``
and ``POST /v1/proposals`` (served by uvicorn, called with httpx)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from personal_assistant.api.app import create_app
from personal_assistant.app.assistant import Assistant
from personal_assistant.core.phrase_model import DISAGREE, TOOL_NAME
from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.errors import NotFoundError, ValidationError
from personal_assistant.tasks.manager import AITaskManager
from support import chat_server
from support.api_server import serving
from support.chat_server import ChatServer, Reply
from support.stack import run, settings_for

pytestmark = pytest.mark.integration

#: A Wednesday morning.
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


async def _manager_checks(url: str) -> None:
    async with AITaskManager(settings_for({"DATABASE_URL": url}), clock=lambda: NOW) as manager:
        ada = await manager.create_user("Ada", timezone="Europe/Paris")
        said = "remind me tomorrow at 9 to call mum"
        proposal = await manager.propose_task(ada.id, said)
        assert isinstance(proposal, Proposal)
        assert proposal.title == "Call mum"
        assert proposal.schedule["timezone"] == "Europe/Paris"
        assert await manager.list_tasks(ada.id) == []  # a proposal creates nothing

        task = await manager.create_task_from_text(ada.id, said)
        assert (task.title, task.description) == ("Call mum", "Remind me to call mum")
        assert task.schedule["kind"] == "once"
        assert task.next_run_at == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)  # 09:00 in Paris

        weekly = await manager.create_task_from_text(
            ada.id,
            "remind me every weekday at 8:30 to stretch",
            title="Stretch!",
            catch_up="skip",
        )
        assert (weekly.title, weekly.catch_up) == ("Stretch!", "skip")
        assert weekly.schedule["weekdays"] == WEEKDAYS
        assert weekly.next_run_at == datetime(2026, 3, 5, 7, 30, tzinfo=UTC)

        # Every other Tuesday at 18:00 Paris time, stored and due at 18:00 on both sides of
        # the change to summer time (29 March): 10, 24 March, then 7 April.
        bins = await manager.create_task_from_text(ada.id, "every other Tuesday at 6pm bins out")
        assert bins.schedule["every_weeks"] == 2
        assert bins.next_run_at == datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
        _, firings = await manager.preview_schedule(ada.id, bins.schedule, 3)
        assert firings == [
            datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
            datetime(2026, 3, 24, 17, 0, tzinfo=UTC),
            datetime(2026, 4, 7, 16, 0, tzinfo=UTC),
        ]

        refusal = await manager.propose_task(ada.id, "remind me at 4 to call mom")
        assert isinstance(refusal, Refusal)
        assert refusal.closest is not None
        with pytest.raises(ValidationError) as caught:
            await manager.create_task_from_text(ada.id, "remind me at 4 to call mom")
        assert caught.value.field == "text"
        assert "Did you mean: 'Call mom' (reminder), once at" in caught.value.message

        for bad in ("", "x" * 10_000, "🙂🙂🙂", "rappelle-moi demain à 9h de boire"):
            with pytest.raises(ValidationError) as caught:
                await manager.create_task_from_text(ada.id, bad)
            assert caught.value.field == "text"
            assert caught.value.message
        with pytest.raises(ValidationError) as caught:
            await manager.create_task_from_text(ada.id, said, colour="blue")
        assert caught.value.field == "colour"
        with pytest.raises(NotFoundError):
            await manager.propose_task(ada.id + 100, said)
        assert [t.id for t in await manager.list_tasks(ada.id)] == [task.id, weekly.id, bins.id]


def test_the_manager_proposes_and_creates_from_text(url: str) -> None:
    run(_manager_checks(url))


async def _seed(url: str) -> str:
    async with Assistant(settings_for({"DATABASE_URL": url})) as app:
        ada = await app.tasks.create_user("Ada", timezone="America/New_York")
        return (await app.keys.create(ada.id, "laptop")).token


def test_the_api_proposes_and_refuses(url: str) -> None:
    token = run(_seed(url))
    app = create_app(settings_for({"DATABASE_URL": url}))
    headers = {"Authorization": f"Bearer {token}"}
    with serving(app) as base, httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        said = {"text": "remind me every weekday at 8:30 to stretch"}
        answer = client.post("/v1/proposals", json=said)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        proposal = body["proposal"]
        assert proposal["title"] == "Stretch"
        assert proposal["timezone"] == "America/New_York"
        assert proposal["schedule"]["weekdays"] == WEEKDAYS
        assert "08:30" in proposal["description"]
        assert len(body["next_firings"]) == 3
        assert all(f.endswith(("12:30:00+00:00", "13:30:00+00:00")) for f in body["next_firings"])
        assert client.get("/v1/tasks").json()["items"] == []  # nothing created

        # The proposal is what POST /v1/tasks takes.
        made = client.post(
            "/v1/tasks",
            json={k: proposal[k] for k in ("title", "instruction", "task_type", "schedule")},
        )
        assert made.status_code == 201, made.text
        assert made.json()["schedule"] == proposal["schedule"]

        unsure = client.post("/v1/proposals", json={"text": "remind me at 4 to call mom"})
        assert unsure.status_code == 422
        assert unsure.headers["content-type"] == "application/problem+json"
        problem = unsure.json()
        assert problem["field"] == "text"
        assert "morning or afternoon" in problem["detail"]
        assert problem["closest"]["title"] == "Call mom"
        assert problem["closest"]["schedule"]["kind"] == "once"

        for bad in ("", "x" * 10_000, "🙂🙂🙂", "rappelle-moi demain à 9h de boire"):
            refused = client.post("/v1/proposals", json={"text": bad})
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["field"] == "text"
            assert "closest" not in refused.json()
        wrong = client.post("/v1/proposals", json={"text": 42})
        assert wrong.status_code == 422
        assert wrong.json()["field"] == "text"
        assert len(client.get("/v1/tasks").json()["items"]) == 1


def _model_says(schedule: dict[str, object]) -> Reply:
    """The model's answer to "remind me every weekday at 8:30 to stretch"."""
    answer = {"title": "Stretch", "instruction": "Stretch", "task_type": "reminder"}
    return chat_server.tool_call(TOOL_NAME, {**answer, "schedule": schedule})


def test_the_api_shows_what_the_model_read(url: str) -> None:
    """With AGENT=openai: an agreeing model marks the proposal read by both; a disagreeing one
    makes the request a 422 question offering both readings, and nothing is created."""
    token = run(_seed(url))
    with ChatServer() as model:
        settings = settings_for(
            {
                "DATABASE_URL": url,
                "AGENT": "openai",
                "AGENT_BASE_URL": model.base_url,
                "AGENT_MODEL": "test-model",
                "AGENT_TIMEOUT": "5",
            }
        )
        headers = {"Authorization": f"Bearer {token}"}
        said = {"text": "remind me every weekday at 8:30 to stretch"}
        with (
            serving(create_app(settings)) as base,
            httpx.Client(base_url=base, timeout=30, headers=headers) as client,
        ):
            model.script(_model_says({"kind": "cron", "expression": "30 8 * * 1-5"}))
            agreed = client.post("/v1/proposals", json=said)
            assert agreed.status_code == 200, agreed.text
            assert agreed.json()["proposal"]["source"] == "offline+model"
            assert agreed.json()["proposal"]["schedule"]["kind"] == "weekly"  # the offline one

            model.script(_model_says({"kind": "daily", "times": ["08:30"]}))
            differs = client.post("/v1/proposals", json=said)
            assert differs.status_code == 422, differs.text
            problem = differs.json()
            assert problem["detail"].startswith(DISAGREE)
            assert problem["closest"]["source"] == "offline"
            assert problem["closest"]["schedule"]["weekdays"] == WEEKDAYS
            assert problem["other"]["source"] == "model"
            assert problem["other"]["schedule"]["kind"] == "daily"
            assert client.get("/v1/tasks").json()["items"] == []
        [first, second] = model.received
        assert first.body["messages"][-1]["content"] == said["text"]
        assert second.body["tool_choice"]["function"]["name"] == TOOL_NAME
