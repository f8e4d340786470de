"""The HTTP API on real databases (PostgreSQL and SQLite), served by uvicorn on loopback and
called with httpx.

Tenant isolation is checked operation by operation from the app's OpenAPI document, so a new
route cannot skip it: every route but ``/healthz`` refuses a request without a key or with a
revoked one (401); every route with an object id in its path answers another user's object with
404, as an unknown one, and leaks nothing; every list shows the caller's objects only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from personal_assistant.api.app import create_app
from personal_assistant.api.security import SECURE_HEADERS
from personal_assistant.app.assistant import Assistant
from personal_assistant.calendars import store as calendar_store
from personal_assistant.notifications.transports.apprise_urls import validate
from support.api_server import serving
from support.stack import run, settings_for

pytestmark = pytest.mark.integration

DAILY = {"kind": "daily", "times": ["09:00"]}
#: A body each operation that takes one accepts ((method, path) -> JSON).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/tasks"): {"title": "t", "schedule": DAILY},
    ("PATCH", "/v1/tasks/{task_id}"): {"title": "renamed"},
    ("POST", "/v1/schedule/preview"): {"schedule": DAILY},
    ("POST", "/v1/proposals"): {"text": "remind me every day at 9 to stretch"},
    ("POST", "/v1/notifications/read"): {"ids": [1]},
    ("POST", "/v1/users"): {"display_name": "Eve"},
    ("PATCH", "/v1/users/{user_id}"): {"phone": None},
    ("POST", "/v1/channels"): {"name": "bell", "url": "json://hooks.invalid/bell"},
    ("PUT", "/v1/quiet-hours"): {"start": "22:00", "end": "07:00"},
    ("POST", "/v1/calendars"): {"name": "home", "url": "https://calendar.invalid/home.ics"},
    ("PUT", "/v1/digest"): {"at": "20:00"},
    ("POST", "/v1/import"): {
        "format": "personal-assistant-export",
        "version": 1,
        "user": {"display_name": "Eve", "timezone": "UTC", "created_at": None},
        "tasks": [],
        "runs": [],
        "notifications": [],
    },
}
#: Operations that need no key.
PUBLIC = {"/healthz"}
ADMIN_ONLY = {
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users/{user_id}"),
    ("PATCH", "/v1/users/{user_id}"),
    ("DELETE", "/v1/users/{user_id}"),
    ("GET", "/v1/doctor"),
}


@dataclass
class World:
    app: FastAPI
    client: httpx.Client
    keys: dict[str, str]  # who -> token
    ids: dict[str, int | str]  # what -> id (a channel, a calendar: its name), all ann's
    revoked: str

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


async def _seed(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int | str], str]:
    async with Assistant(settings_for(env)) as app:
        ann = await app.tasks.create_user("Ann", timezone="Europe/Paris", is_admin=True)
        bob = await app.tasks.create_user("Bob")
        at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        task = await app.tasks.create_task(ann.id, "Ann's", schedule={"kind": "once", "at": at})
        run_ = await app.tasks.run_now(task.id, ann.id)
        keys = {
            "ann": (await app.keys.create(ann.id, "laptop")).token,
            "bob": (await app.keys.create(bob.id, "phone")).token,
        }
        old = await app.keys.create(bob.id, "old")
        await app.keys.revoke(bob.id, old.key.id)
        # Names that do not resolve: allowed when added; a test send or sync fails at once.
        hook = validate("ann-hook", "json://hooks.invalid/notify")
        channel = await app.channels.add(ann.id, hook)
        feed = calendar_store.validate("ann-cal", "https://calendar.invalid/ann.ics")
        calendar = await app.calendars.add(ann.id, feed, check_destination=True)
        ids: dict[str, int | str] = {"task_id": task.id, "run_id": run_.id, "ann": ann.id}
        ids |= {"bob": bob.id, "channel": channel.name, "calendar": calendar.name}
        ids["user_id"] = (await app.tasks.create_user("Cy")).id  # the admin routes' object
        return keys, ids, old.token


@pytest.fixture
def world(url: str) -> Iterator[World]:
    env = {"DATABASE_URL": url, "API_MAX_BODY_BYTES": "4096"}
    env["CHANNEL_KEYS"] = Fernet.generate_key().decode()
    keys, ids, revoked = run(_seed(env))
    app = create_app(settings_for(env))
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield World(app, client, keys, ids, revoked)


def _routes(world: World) -> list[tuple[str, str, set[str]]]:
    """Every operation of the app's OpenAPI document: method, path, path parameters."""
    found = []
    for path, item in world.app.openapi()["paths"].items():
        for method, operation in item.items():
            if path not in PUBLIC:
                params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                found.append((method.upper(), path, params))
    assert len(found) >= 15
    return found


def _call(world: World, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path.format(**world.ids)
    return world.client.request(method, url, json=BODIES.get((method, path)), headers=headers)


def test_every_route_needs_a_valid_key(world: World) -> None:
    for method, path, _ in _routes(world):
        for headers in (
            {},
            {"Authorization": f"Bearer {world.revoked}"},
            {"Authorization": "Bearer pa_nope"},
        ):
            answer = _call(world, method, path, headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["www-authenticate"] == "Bearer"


def test_another_users_object_is_404_on_every_route(world: World) -> None:
    # The owner's own calls go in order, the delete last (it would 404 what follows).
    # The admin routes name any user's object by design (test_admin_routes_refuse_other_users).
    with_ids = sorted(
        ((m, p, params) for m, p, params in _routes(world) if params and (m, p) not in ADMIN_ONLY),
        key=lambda r: r[0] == "DELETE",
    )
    assert with_ids, "no route with an object id"
    for method, path, params in with_ids:
        assert params <= {"task_id", "run_id", "channel", "calendar"}, f"{path}: add its object"
        answer = _call(world, method, path, world.as_("bob"))
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["status"] == 404
        assert "Ann's" not in answer.text
        # The owner gets it (or a conflict of state), never a 404.
        mine = _call(world, method, path, world.as_("ann"))
        assert mine.status_code != 404, (method, path, mine.text)


def test_lists_hold_the_callers_objects_only(world: World) -> None:
    bob = world.as_("bob")
    assert world.client.get("/v1/tasks", headers=bob).json() == {"items": [], "next_cursor": None}
    assert world.client.get("/v1/runs", headers=bob).json() == []
    assert world.client.get("/v1/notifications", headers=bob).json() == []
    ann = world.client.get("/v1/tasks", headers=world.as_("ann")).json()["items"]
    assert [t["id"] for t in ann] == [world.ids["task_id"]]
    assert world.client.get("/v1/me", headers=bob).json()["display_name"] == "Bob"


def test_admin_routes_refuse_other_users(world: World) -> None:
    admin_only = [(m, p) for m, p, _ in _routes(world) if (m, p) in ADMIN_ONLY]
    assert sorted(admin_only) == sorted(ADMIN_ONLY)
    admin_only.sort(key=lambda r: r[0] == "DELETE")  # the removal last
    for method, path in admin_only:
        answer = _call(world, method, path, world.as_("bob"))
        assert answer.status_code == 403, (method, path)
        assert _call(world, method, path, world.as_("ann")).status_code < 300


def test_errors_are_problems_naming_the_field(world: World) -> None:
    ann = world.as_("ann")
    bad = world.client.post(
        "/v1/tasks", json={"title": "t", "schedule": {"kind": "weekly"}}, headers=ann
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["field"].startswith("schedule")
    unknown = world.client.post(
        "/v1/tasks", json={"title": "t", "schedule": DAILY, "colour": "red"}, headers=ann
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "colour"
    wrong_type = world.client.get("/v1/tasks/abc", headers=ann)
    assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "task_id"
    paused = world.client.post(f"/v1/tasks/{world.ids['task_id']}/pause", headers=ann)
    assert paused.status_code == 200
    again = world.client.post(f"/v1/tasks/{world.ids['task_id']}/pause", headers=ann)
    assert again.status_code == 409 and again.json()["field"] == "status"


def test_bodies_are_bounded_and_answers_hardened(world: World) -> None:
    ann = world.as_("ann")
    huge = {"title": "t", "schedule": DAILY, "instruction": "x" * 10_000}
    answer = world.client.post("/v1/tasks", json=huge, headers=ann)
    assert answer.status_code == 413 and answer.json()["field"] == "body"
    for name, value in SECURE_HEADERS:
        assert answer.headers[name.decode()] == value.decode()
    ok = world.client.get("/healthz")
    assert ok.json() == {"ok": True}
    assert ok.headers["x-frame-options"] == "DENY"
    assert (
        "access-control-allow-origin"
        not in world.client.options(
            "/v1/tasks",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        ).headers
    )


def test_create_edit_page_preview(world: World) -> None:
    bob = world.as_("bob")
    made = [
        world.client.post("/v1/tasks", json={"title": f"t{i}", "schedule": DAILY}, headers=bob)
        for i in range(5)
    ]
    assert all(m.status_code == 201 for m in made)
    assert made[0].headers["location"] == f"/v1/tasks/{made[0].json()['id']}"
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = world.client.get("/v1/tasks", params=params, headers=bob).json()
        seen += [t["title"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"t{i}" for i in range(5)] and pages == 3
    task = made[0].json()
    assert task["timezone"] == "UTC" and task["next_run_at"].endswith("09:00:00+00:00")
    edited = world.client.patch(
        f"/v1/tasks/{task['id']}",
        json={"schedule": {"kind": "daily", "times": ["18:30"]}, "instruction": "now"},
        headers=bob,
    ).json()
    assert edited["next_run_at"].endswith("18:30:00+00:00")
    assert edited["instruction"] == "now" and edited["title"] == "t0"
    preview = world.client.post(
        "/v1/schedule/preview",
        json={"schedule": {"kind": "weekly", "weekdays": ["mon"], "times": ["08:00"]}, "count": 3},
        headers=bob,
    ).json()
    assert len(preview["firings"]) == 3 and preview["timezone"] == "UTC"
    assert world.client.delete(f"/v1/tasks/{task['id']}", headers=bob).status_code == 204
    assert world.client.get(f"/v1/tasks/{task['id']}", headers=bob).status_code == 404
    assert world.client.get("/v1/notifications/unread-count", headers=bob).json() == {"count": 0}


def test_openapi_is_3_1_and_names_the_bearer_scheme(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_an_admin_edits_and_removes_a_user(world: World) -> None:
    ann, bob_id = world.as_("ann"), world.ids["bob"]
    world.client.post(
        "/v1/tasks", json={"title": "Bob's", "schedule": DAILY}, headers=world.as_("bob")
    )
    edited = world.client.patch(
        f"/v1/users/{bob_id}",
        json={"display_name": "Robert", "timezone": "Asia/Tokyo", "email": "bob@example.org"},
        headers=ann,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json() | {"created_at": None, "digest": None} == {
        "id": bob_id,
        "display_name": "Robert",
        "email": "bob@example.org",
        "phone": None,
        "timezone": "Asia/Tokyo",
        "is_admin": False,
        "digest": None,
        "created_at": None,
    }
    cleared = world.client.patch(f"/v1/users/{bob_id}", json={"email": None}, headers=ann)
    assert cleared.json()["email"] is None
    bad = world.client.patch(f"/v1/users/{bob_id}", json={"timezone": "Mars/Base"}, headers=ann)
    assert bad.status_code == 422 and bad.json()["field"] == "timezone"
    assert world.client.get(f"/v1/users/{bob_id}", headers=ann).json()["display_name"] == "Robert"
    removed = world.client.delete(f"/v1/users/{bob_id}", headers=ann)
    assert removed.status_code == 200
    assert removed.json()["tasks"] == 1 and removed.json()["keys"] == 2
    assert world.client.get(f"/v1/users/{bob_id}", headers=ann).status_code == 404
    assert world.client.get("/v1/me", headers=world.as_("bob")).status_code == 401
    assert world.client.get("/v1/me", headers=ann).status_code == 200
    ann_id = world.ids["ann"]
    demote = world.client.patch(f"/v1/users/{ann_id}", json={"is_admin": False}, headers=ann)
    assert demote.status_code == 409 and demote.json()["field"] == "is_admin"
    itself = world.client.delete(f"/v1/users/{ann_id}", headers=ann)
    assert itself.status_code == 409 and itself.json()["field"] == "user_id"
    assert world.client.get("/v1/me", headers=ann).json()["is_admin"] is True
