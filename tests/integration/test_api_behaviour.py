"""The HTTP API's behaviour across operations, on real databases (PostgreSQL and SQLite) behind
uvicorn: ``Idempotency-Key`` on creates, ETags and ``If-Match`` on edits, the per-key rate
limit (429), and the server-sent events of ``/v1/events``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from personal_assistant.api.app import create_app
from personal_assistant.app.assistant import Assistant
from personal_assistant.database.engine import make_sync_engine
from personal_assistant.database.models import Notification
from support.api_server import serving
from support.stack import Db, run, settings_for

pytestmark = pytest.mark.integration

DAILY = {"kind": "daily", "times": ["09:00"]}


@dataclass
class World:
    url: str
    base: str
    client: httpx.Client
    keys: dict[str, str]  # who -> token
    ids: dict[str, int]  # who -> user id; "task" -> Ann's task

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


async def _seed(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    async with Assistant(settings_for(env)) as app:
        ann = await app.tasks.create_user("Ann", is_admin=True)
        bob = await app.tasks.create_user("Bob")
        at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        task = await app.tasks.create_task(ann.id, "Ann's", schedule={"kind": "once", "at": at})
        bobs = await app.tasks.create_task(bob.id, "Bob's", schedule={"kind": "once", "at": at})
        keys = {
            "ann": (await app.keys.create(ann.id, "laptop")).token,
            "bob": (await app.keys.create(bob.id, "phone")).token,
        }
        return keys, {"ann": ann.id, "bob": bob.id, "task": task.id, "bobs_task": bobs.id}


@pytest.fixture
def world(url: str) -> Iterator[World]:
    env = {"DATABASE_URL": url}
    keys, ids = run(_seed(env))
    with (
        serving(create_app(settings_for(env))) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        yield World(url, base, client, keys, ids)


def _tasks(world: World, who: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = world.client.get("/v1/tasks", headers=world.as_(who)).json()[
        "items"
    ]
    return items


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_the_same_key_and_request_answers_the_first_answer_and_creates_once(world: World) -> None:
    ann = world.as_("ann") | {"Idempotency-Key": "create-stretch-1"}
    body = {"title": "Stretch", "schedule": DAILY, "instruction": "Stand up."}
    first = world.client.post("/v1/tasks", json=body, headers=ann)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # The same body, its fields in another order and spaced otherwise: the same request.
    reordered = json.dumps({"instruction": "Stand up.", "schedule": DAILY, "title": "Stretch"})
    again = world.client.post(
        "/v1/tasks",
        content=reordered,
        headers=ann | {"content-type": "application/json"},
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    assert (
        again.headers["location"] == first.headers["location"] == f"/v1/tasks/{first.json()['id']}"
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert [t["title"] for t in _tasks(world, "ann")].count("Stretch") == 1

    other = world.client.post("/v1/tasks", json=body | {"title": "Other"}, headers=ann)
    assert other.status_code == 422, other.text
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["field"] == "Idempotency-Key"
    # Another caller's same key is theirs: a task of their own.
    bobs = world.client.post(
        "/v1/tasks", json=body, headers=world.as_("bob") | {"Idempotency-Key": "create-stretch-1"}
    )
    assert bobs.status_code == 201 and bobs.json()["id"] != first.json()["id"]
    assert bobs.json()["user_id"] == world.ids["bob"]


def test_a_failed_request_keeps_nothing_and_run_now_and_users_are_idempotent(
    world: World,
) -> None:
    ann = world.as_("ann") | {"Idempotency-Key": "k2"}
    bad = world.client.post(
        "/v1/tasks", json={"title": "x", "schedule": {"kind": "daily"}}, headers=ann
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("schedule")
    fixed = world.client.post("/v1/tasks", json={"title": "x", "schedule": DAILY}, headers=ann)
    assert fixed.status_code == 201, fixed.text

    path = f"/v1/tasks/{world.ids['task']}/run"
    runs = [
        world.client.post(path, headers=world.as_("ann") | {"Idempotency-Key": "r1"}) for _ in "ab"
    ]
    assert [r.status_code for r in runs] == [202, 202]
    assert runs[0].json()["id"] == runs[1].json()["id"]
    listed = world.client.get(f"/v1/tasks/{world.ids['task']}/runs", headers=world.as_("ann"))
    assert len(listed.json()) == 1

    user = {"display_name": "Cleo"}
    made = [
        world.client.post(
            "/v1/users", json=user, headers=world.as_("ann") | {"Idempotency-Key": "u"}
        )
        for _ in "ab"
    ]
    assert [m.status_code for m in made] == [201, 201]
    assert made[0].json()["id"] == made[1].json()["id"]
    assert made[1].headers["location"] == f"/v1/users/{made[0].json()['id']}"
    everyone = world.client.get("/v1/users", headers=world.as_("ann")).json()
    assert [u["display_name"] for u in everyone].count("Cleo") == 1

    bad_key = world.client.post(
        "/v1/tasks",
        json={"title": "x", "schedule": DAILY},
        headers=world.as_("ann") | {"Idempotency-Key": "a b"},
    )
    assert bad_key.status_code == 422 and bad_key.json()["field"] == "Idempotency-Key"


def test_concurrent_requests_with_one_key_create_one_task(world: World) -> None:
    body = {"title": "Once only", "schedule": DAILY}
    headers = world.as_("ann") | {"Idempotency-Key": "race"}
    barrier = threading.Barrier(8)

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=world.base, timeout=30) as client:
            barrier.wait()
            return client.post("/v1/tasks", json=body, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    assert 201 in statuses
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.json()["field"] == "Idempotency-Key"
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    assert [t["title"] for t in _tasks(world, "ann")].count("Once only") == 1
    # Once answered, the key replays for everyone who retries.
    later = world.client.post("/v1/tasks", json=body, headers=headers)
    assert later.status_code == 201 and later.json()["id"] in ids


# --- ETag and If-Match --------------------------------------------------------------------------


def test_etag_not_modified_and_a_stale_if_match_keeps_the_first_change(world: World) -> None:
    ann = world.as_("ann")
    path = f"/v1/tasks/{world.ids['task']}"
    read = world.client.get(path, headers=ann)
    tag = read.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert world.client.get(path, headers=ann).headers["etag"] == tag  # stable
    unchanged = world.client.get(path, headers=ann | {"If-None-Match": tag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == tag
    assert world.client.get(path, headers=ann | {"If-None-Match": '"other"'}).status_code == 200

    # Two editors read the same version; the first edits, the second is refused.
    first = world.client.patch(path, json={"title": "First"}, headers=ann | {"If-Match": tag})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] != tag
    second = world.client.patch(path, json={"title": "Second"}, headers=ann | {"If-Match": tag})
    assert second.status_code == 412, second.text
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["field"] == "If-Match"
    assert world.client.get(path, headers=ann).json()["title"] == "First"
    for method, action in (("POST", "/pause"), ("POST", "/resume"), ("DELETE", "")):
        stale = world.client.request(method, path + action, headers=ann | {"If-Match": tag})
        assert stale.status_code == 412, (action, stale.text)
    assert world.client.get(path, headers=ann).json()["status"] == "active"

    current = first.headers["etag"]
    paused = world.client.post(path + "/pause", headers=ann | {"If-Match": f'"x", {current}'})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.headers["etag"] == world.client.get(path, headers=ann).headers["etag"]
    # Without If-Match an edit goes through, whatever changed.
    assert world.client.patch(path, json={"title": "Third"}, headers=ann).status_code == 200
    # Another user's task is not found, tag or not.
    bobs = world.client.patch(
        f"/v1/tasks/{world.ids['bobs_task']}", json={"title": "x"}, headers=ann | {"If-Match": "*"}
    )
    assert bobs.status_code == 404
    latest = world.client.get(path, headers=ann).headers["etag"]
    gone = world.client.delete(path, headers=ann | {"If-Match": latest})
    assert gone.status_code == 204
    assert world.client.get(path, headers=ann).status_code == 404


def test_two_concurrent_editors_of_one_version_one_wins(world: World) -> None:
    ann = world.as_("ann")
    path = f"/v1/tasks/{world.ids['task']}"
    tag = world.client.get(path, headers=ann).headers["etag"]
    barrier = threading.Barrier(2)

    def edit(title: str) -> httpx.Response:
        with httpx.Client(base_url=world.base, timeout=30) as client:
            barrier.wait()
            return client.patch(path, json={"title": title}, headers=ann | {"If-Match": tag})

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(edit, ["A", "B"]))
    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()["title"]
    assert world.client.get(path, headers=ann).json()["title"] == winner


# --- rate limit ---------------------------------------------------------------------------------


def test_past_the_burst_a_key_gets_429_with_retry_after(url: str) -> None:
    env = {"DATABASE_URL": url, "API_RATE_BURST": "3", "API_RATE_LIMIT_PER_MINUTE": "1"}
    keys, _ = run(_seed(env))
    with (
        serving(create_app(settings_for(env))) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        ann = {"Authorization": f"Bearer {keys['ann']}"}
        answers = [client.get("/v1/me", headers=ann) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-remaining"] == "0"
        assert keys["ann"] not in refused.text
        # Counted per key: Bob's is untouched; no key is still a 401, not a 429.
        assert (
            client.get("/v1/me", headers={"Authorization": f"Bearer {keys['bob']}"}).status_code
            == 200
        )
        assert client.get("/v1/me").status_code == 401


# --- server-sent events -------------------------------------------------------------------------


def _events(lines: Iterator[str], until: Any) -> list[dict[str, Any]]:
    """Parse events off a stream until ``until(event)`` is true; heartbeats are skipped."""
    found: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":") or line.startswith("retry:"):
            continue
        if line == "":
            if event:
                found.append(event)
                if until(event):
                    return found
            event = {}
            continue
        name, _, value = line.partition(": ")
        event[name] = json.loads(value) if name == "data" else value
    raise AssertionError(f"the stream ended after {found}")


def _add_notification(url: str, user_id: int, title: str) -> int:
    engine = make_sync_engine(url)
    try:
        with Session(engine) as session, session.begin():
            note = Notification(
                user_id=user_id,
                channel="in_app",
                status="delivered",
                title=title,
                body="b",
                created_at=datetime.now(UTC),
            )
            session.add(note)
            session.flush()
            return note.id
    finally:
        engine.dispose()


def _wait_connected(lines: Iterator[str]) -> None:
    for line in lines:
        if line == ": connected":
            return
    raise AssertionError("the stream ended before it opened")


def test_events_stream_the_callers_runs_and_notifications_and_resume(world: World) -> None:
    ann, ids = world.as_("ann"), world.ids
    with world.client.stream("GET", "/v1/events", headers=ann) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        _wait_connected(lines)
        # Bob's first: were they sent to Ann, they would come before hers.
        world.client.post(f"/v1/tasks/{ids['bobs_task']}/run", headers=world.as_("bob"))
        bobs_note = _add_notification(world.url, ids["bob"], "for Bob")
        run_ = world.client.post(f"/v1/tasks/{ids['task']}/run", headers=ann).json()
        seen = _events(lines, lambda e: e["event"] == "run")
        assert [e["data"]["id"] for e in seen] == [run_["id"]]
        assert seen[0]["data"]["state"] == "queued" and seen[0]["data"]["task_id"] == ids["task"]
        after_run = seen[0]["id"]
        # A change of state of the run is an event too.
        db = Db(world.url)
        try:
            db.execute("UPDATE task_runs SET state = 'running' WHERE id = :id", id=run_["id"])
        finally:
            db.close()
        moved = _events(lines, lambda e: e["event"] == "run")
        assert moved[-1]["data"]["id"] == run_["id"] and moved[-1]["data"]["state"] == "running"
        note = _add_notification(world.url, ids["ann"], "for Ann")
        notes = _events(lines, lambda e: e["event"] == "notification")
        assert [e["data"]["id"] for e in notes] == [note]
        assert notes[0]["data"]["user_id"] == ids["ann"] and bobs_note != note
    # Resumed after the run's event: the notification comes again, Bob's never.
    with world.client.stream(
        "GET", "/v1/events", headers=ann | {"Last-Event-ID": after_run}
    ) as resumed:
        lines = resumed.iter_lines()
        again = _events(lines, lambda e: e["event"] == "notification")
        assert [(e["event"], e["data"]["id"]) for e in again] == [("notification", note)]


def test_a_stream_ends_on_disconnect_and_on_server_shutdown(url: str) -> None:
    env = {"DATABASE_URL": url}
    keys, _ = run(_seed(env))
    headers = {"Authorization": f"Bearer {keys['ann']}"}
    with serving(create_app(settings_for(env))) as base:
        client = httpx.Client(base_url=base, timeout=30)
        with client.stream("GET", "/v1/events", headers=headers) as left:
            _wait_connected(left.iter_lines())  # closed by the client here
        kept = client.stream("GET", "/v1/events", headers=headers)
        stream = kept.__enter__()
        lines = stream.iter_lines()
        _wait_connected(lines)
    # The server stopped with a stream open: the stream ended (a hang would time the read out).
    rest = list(lines)
    assert all(line.startswith(":") or not line for line in rest), rest
    kept.__exit__(None, None, None)
    client.close()
    assert not [t for t in threading.enumerate() if t.name == "api-server" and t.is_alive()]


def test_keys_expire_after_a_day_and_an_abandoned_claim_is_taken_over(url: str) -> None:
    from personal_assistant.app.idempotency import Answer
    from personal_assistant.errors import ConflictError

    env = {"DATABASE_URL": url}
    _, ids = run(_seed(env))
    now = [datetime(2026, 12, 4, 12, 0, tzinfo=UTC)]

    async def scenario() -> list[object]:
        seen: list[object] = []
        async with Assistant(settings_for(env), clock=lambda: now[0]) as app:
            keys = app.idempotency
            seen.append(await keys.claim(ids["ann"], "k", "h1"))  # None: ours to answer
            now[0] += timedelta(minutes=1)
            try:
                await keys.claim(ids["ann"], "k", "h1")
            except ConflictError as busy:
                seen.append(busy.field)
            now[0] += timedelta(minutes=2)  # its server died: taken over
            seen.append(await keys.claim(ids["ann"], "k", "h1"))
            await keys.finish(ids["ann"], "k", Answer(201, '{"id":7}', "/v1/tasks/7"))
            now[0] += timedelta(hours=23)
            seen.append(await keys.claim(ids["ann"], "k", "h1"))  # the stored answer
            now[0] += timedelta(hours=2)
            seen.append(await keys.claim(ids["ann"], "k", "h2"))  # expired: a new request
        return seen

    assert run(scenario()) == [
        None,
        "Idempotency-Key",
        None,
        Answer(201, '{"id":7}', "/v1/tasks/7"),
        None,
    ]
    db = Db(url)
    try:
        assert db.scalar("SELECT count(*) FROM idempotency_keys") == 1
    finally:
        db.close()
