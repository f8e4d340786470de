"""Channels, quiet hours, calendars, the digest, exports and the doctor over HTTP, on real
databases (PostgreSQL and SQLite), served by uvicorn on loopback and called with httpx.

Each operation works for its owner and acts on the caller's objects only; channel and feed URLs
are masked in every answer; a destination on loopback, a private network or the cloud metadata
address is refused when added (422 naming ``url``) under the default outbound policy; an import
never writes into another user's account; the doctor answers admins only.
(``test_api.py`` covers every route's key and 404 checks, from the OpenAPI document.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from personal_assistant.api.app import create_app
from personal_assistant.app.assistant import Assistant
from support.api_server import serving
from support.hook_server import HookServer
from support.ics_server import IcsServer, vcalendar, vevent
from support.stack import Db, run, settings_for

pytestmark = pytest.mark.integration

SECRET = "S3cretT0kenValue"
#: What the tests let through when a loopback test server must be reachable.
LOOPBACK = {"OUTBOUND_ALLOW": "127.0.0.0/8"}
INTERNAL_HOOKS = [
    "json://127.0.0.1:9/notify",
    "json://localhost:9/notify",
    "json://10.1.2.3/notify",
    "json://192.168.0.7/notify",
    "json://169.254.169.254/latest/meta-data",
    f"json://user:{SECRET}@[::1]:9/notify",
    f"mailto://user:{SECRET}@127.0.0.1:25?mode=insecure&from=a@example.org&to=b@example.org",
]
INTERNAL_FEEDS = [
    "http://127.0.0.1:9/calendar.ics",
    "http://localhost:9/calendar.ics",
    "webcal://10.1.2.3/calendar.ics",
    "https://172.16.0.9/calendar.ics",
    f"http://169.254.169.254/latest/meta-data?token={SECRET}",
    "http://[::1]:9/calendar.ics",
]


@dataclass
class Api:
    """The served app, its two users' keys, and every answer's text (masking checks)."""

    client: httpx.Client
    keys: dict[str, str]
    ids: dict[str, int]
    seen: list[str] = field(default_factory=list)

    def call(
        self, who: str, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        headers = (headers or {}) | {"Authorization": f"Bearer {self.keys[who]}"}
        answer = self.client.request(method, path, headers=headers, **kw)
        self.seen.append(answer.text)
        return answer

    def everything_seen(self) -> str:
        return "\n".join(self.seen)


async def _seed(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    async with Assistant(settings_for(env)) as app:
        ann = await app.tasks.create_user("Ann", timezone="Europe/Paris", is_admin=True)
        bob = await app.tasks.create_user("Bob")
        keys = {
            "ann": (await app.keys.create(ann.id, "laptop")).token,
            "bob": (await app.keys.create(bob.id, "phone")).token,
        }
        return keys, {"ann": ann.id, "bob": bob.id}


@pytest.fixture
def env(url: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "CHANNEL_KEYS": Fernet.generate_key().decode()}


@contextmanager
def serve(env: dict[str, str], keys: dict[str, str], ids: dict[str, int]) -> Iterator[Api]:
    with (
        serving(create_app(settings_for(env))) as base,
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        yield Api(client, keys, ids)


@pytest.fixture
def seeded(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    return run(_seed(env))


@pytest.fixture
def api(env: dict[str, str], seeded: tuple[dict[str, str], dict[str, int]]) -> Iterator[Api]:
    """The default outbound policy: nothing internal."""
    with serve(env, *seeded) as served:
        yield served


def _problem(answer: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["field"] == field, body
    return body


# --- channels and quiet hours ------------------------------------------------------------------


def test_channels_added_tested_and_removed_with_urls_masked(
    env: dict[str, str], seeded: tuple[dict[str, str], dict[str, int]]
) -> None:
    with HookServer() as hook, serve(env | LOOPBACK, *seeded) as api:
        url = f"json://hook:{SECRET}@127.0.0.1:{hook.port}/notify"
        added = api.call("ann", "POST", "/v1/channels", json={"name": "hook", "url": url})
        assert added.status_code == 201, added.text
        assert added.headers["location"] == "/v1/channels/hook"
        body = added.json()
        assert (body["name"], body["kind"], body["status"]) == ("hook", "webhook", "active")
        assert "127.0.0.1:" in body["url"] and body["daily_cap"] is None
        capped = {"name": "capped", "url": hook.url(), "daily_cap": 3}
        assert api.call("ann", "POST", "/v1/channels", json=capped).json()["daily_cap"] == 3
        again = api.call("ann", "POST", "/v1/channels", json={"name": "hook", "url": url})
        _problem(again, 409, "name")
        listed = api.call("ann", "GET", "/v1/channels").json()
        assert [c["name"] for c in listed] == ["capped", "hook"]
        assert listed[1] == body

        tested = api.call("ann", "POST", "/v1/channels/hook/test")
        assert tested.json() == {
            "channel": "hook",
            "delivered": True,
            "reason": None,
            "reactivated": False,
            "permanent": None,
        }
        assert len(hook.received) == 1 and hook.requests == [("/notify", 200)]

        # Bob sees none of it, and cannot test or remove Ann's channel.
        assert api.call("bob", "GET", "/v1/channels").json() == []
        _problem(api.call("bob", "POST", "/v1/channels/hook/test"), 404, "name")
        _problem(api.call("bob", "DELETE", "/v1/channels/hook"), 404, "name")
        assert len(hook.received) == 1

        assert api.call("ann", "DELETE", "/v1/channels/hook").status_code == 204
        _problem(api.call("ann", "DELETE", "/v1/channels/hook"), 404, "name")
        assert [c["name"] for c in api.call("ann", "GET", "/v1/channels").json()] == ["capped"]
        assert SECRET not in api.everything_seen()


def test_a_failed_test_send_says_why(api: Api) -> None:
    added = api.call(
        "ann", "POST", "/v1/channels", json={"name": "gone", "url": "json://x.invalid/"}
    )
    assert added.status_code == 201
    done = api.call("ann", "POST", "/v1/channels/gone/test")
    assert done.status_code == 200
    assert done.json()["delivered"] is False and done.json()["reason"]


def test_adding_a_channel_or_calendar_twice_with_one_idempotency_key_adds_one(api: Api) -> None:
    for path, body in (
        ("/v1/channels", {"name": "bell", "url": "json://hooks.invalid/bell"}),
        ("/v1/calendars", {"name": "home", "url": "https://calendar.invalid/home.ics"}),
    ):
        headers = {"Idempotency-Key": f"add-{path}"}
        first = api.call("ann", "POST", path, headers=headers, json=body)
        again = api.call("ann", "POST", path, headers=headers, json=body)
        assert first.status_code == again.status_code == 201, (first.text, again.text)
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
        assert [c["name"] for c in api.call("ann", "GET", path).json()] == [body["name"]]
        other = api.call("ann", "POST", path, headers=headers, json=body | {"name": "other"})
        _problem(other, 422, "Idempotency-Key")


@pytest.mark.parametrize("target", INTERNAL_HOOKS)
def test_a_channel_to_an_internal_address_is_refused(api: Api, target: str) -> None:
    answer = api.call("ann", "POST", "/v1/channels", json={"name": "inside", "url": target})
    body = _problem(answer, 422, "url")
    assert "not a public address" in body["detail"]
    assert api.call("ann", "GET", "/v1/channels").json() == []
    assert SECRET not in api.everything_seen()


def test_channel_input_errors_name_the_field(api: Api) -> None:
    cases = [
        ({"name": "Bad Name", "url": "json://x.invalid/"}, "name"),
        ({"name": "in_app", "url": "json://x.invalid/"}, "name"),
        ({"name": "ok", "url": "nope://x"}, "url"),
        ({"name": "ok", "url": "json://x.invalid/a\x00b"}, "url"),
        ({"name": "ok", "url": "json://x.invalid/", "daily_cap": 0}, "daily_cap"),
        ({"name": "ok", "url": "json://x.invalid/", "colour": "red"}, "colour"),
    ]
    for body, field_name in cases:
        _problem(api.call("ann", "POST", "/v1/channels", json=body), 422, field_name)
    _problem(api.call("ann", "POST", "/v1/channels/Bad%20Name/test"), 422, "name")


def test_quiet_hours(api: Api) -> None:
    assert api.call("ann", "GET", "/v1/quiet-hours").json()["quiet_hours"] is None
    set_ = api.call("ann", "PUT", "/v1/quiet-hours", json={"start": "22:00", "end": "7:30"})
    assert set_.json() == {
        "user_id": api.ids["ann"],
        "timezone": "Europe/Paris",
        "quiet_hours": ["22:00", "07:30"],
    }
    assert api.call("ann", "GET", "/v1/quiet-hours").json()["quiet_hours"] == ["22:00", "07:30"]
    assert api.call("bob", "GET", "/v1/quiet-hours").json()["quiet_hours"] is None
    same = api.call("ann", "PUT", "/v1/quiet-hours", json={"start": "22:00", "end": "22:00"})
    _problem(same, 422, "end")
    bad = api.call("ann", "PUT", "/v1/quiet-hours", json={"start": "24:00", "end": "07:00"})
    _problem(bad, 422, "start")
    assert api.call("ann", "DELETE", "/v1/quiet-hours").status_code == 204
    assert api.call("ann", "GET", "/v1/quiet-hours").json()["quiet_hours"] is None


# --- calendars ---------------------------------------------------------------------------------


FEED = vcalendar(
    vevent("dentist@x", "Dentist", "DTSTART:20990303T100000Z", "DTEND:20990303T110000Z"),
    vevent("soon@x", "Soon", f"DTSTART:{(datetime.now(UTC) + timedelta(days=2)):%Y%m%dT%H%M%SZ}"),
)


def test_calendars_added_synced_and_removed_with_urls_masked(
    env: dict[str, str], seeded: tuple[dict[str, str], dict[str, int]]
) -> None:
    with IcsServer(FEED) as server, serve(env | LOOPBACK, *seeded) as api:
        url = server.url(f"/calendar.ics?token={SECRET}")
        body = {"name": "work", "url": url, "lead_minutes": 30, "channels": ["in_app"]}
        added = api.call("ann", "POST", "/v1/calendars", json=body)
        assert added.status_code == 201, added.text
        assert added.headers["location"] == "/v1/calendars/work"
        feed = added.json()
        assert (feed["name"], feed["lead_minutes"], feed["channels"]) == ("work", 30, ["in_app"])
        assert feed["url"].startswith("http://127.0.0.1:") and feed["last_synced_at"] is None
        _problem(api.call("ann", "POST", "/v1/calendars", json=body), 409, "name")

        synced = api.call("ann", "POST", "/v1/calendars/work/sync")
        assert synced.status_code == 200, synced.text
        report = synced.json()
        assert (report["name"], report["created"], report["error"]) == ("work", 1, None)
        assert [r.path for r in server.requests] == [f"/calendar.ics?token={SECRET}"]
        (listed,) = api.call("ann", "GET", "/v1/calendars").json()
        assert listed["upcoming_events"] == 1 and listed["last_synced_at"] is not None

        assert api.call("bob", "GET", "/v1/calendars").json() == []
        _problem(api.call("bob", "POST", "/v1/calendars/work/sync"), 404, "name")
        _problem(api.call("bob", "DELETE", "/v1/calendars/work"), 404, "name")
        assert len(server.requests) == 1

        server.fail_next(503)
        failed = api.call("ann", "POST", "/v1/calendars/work/sync").json()
        assert failed["error"] == "url: could not fetch: HTTP 503 Service Unavailable"
        assert api.call("ann", "DELETE", "/v1/calendars/work").status_code == 204
        assert api.call("ann", "GET", "/v1/calendars").json() == []
        _problem(api.call("ann", "POST", "/v1/calendars/work/sync"), 404, "name")
        assert SECRET not in api.everything_seen()


@pytest.mark.parametrize("target", INTERNAL_FEEDS)
def test_a_calendar_at_an_internal_address_is_refused(api: Api, target: str) -> None:
    answer = api.call("ann", "POST", "/v1/calendars", json={"name": "inside", "url": target})
    body = _problem(answer, 422, "url")
    assert "not a public address" in body["detail"]
    assert api.call("ann", "GET", "/v1/calendars").json() == []
    assert SECRET not in api.everything_seen()


def test_calendar_input_errors_name_the_field(api: Api) -> None:
    feed = "https://calendar.invalid/a.ics"
    cases = [
        ({"name": "work", "url": "ftp://calendar.invalid/a.ics"}, "url"),
        ({"name": "work", "url": "https://calendar.invalid/a\x00.ics"}, "url"),
        ({"name": "work", "url": feed, "lead_minutes": -5}, "lead_minutes"),
        ({"name": "work", "url": feed, "interval_minutes": 1}, "interval_minutes"),
        ({"name": "work", "url": feed, "channels": ["pigeon"]}, "channels"),
        ({"name": "Work Stuff", "url": feed}, "name"),
    ]
    for body, field_name in cases:
        _problem(api.call("ann", "POST", "/v1/calendars", json=body), 422, field_name)
    # A channel of another user is not the caller's.
    api.call("bob", "POST", "/v1/channels", json={"name": "bobs", "url": "json://x.invalid/"})
    mine = {"name": "work", "url": feed, "channels": ["bobs"]}
    _problem(api.call("ann", "POST", "/v1/calendars", json=mine), 422, "channels")


# --- the digest --------------------------------------------------------------------------------


def test_the_digest_is_set_moved_and_turned_off(api: Api) -> None:
    assert api.call("ann", "GET", "/v1/digest").json() == {
        "user_id": api.ids["ann"],
        "timezone": "Europe/Paris",
        "digest": None,
    }
    _problem(api.call("ann", "PUT", "/v1/digest", json={}), 422, "at")
    _problem(api.call("ann", "PUT", "/v1/digest", json={"channel": "in_app"}), 422, "at")
    set_ = api.call("ann", "PUT", "/v1/digest", json={"at": "20:00"}).json()["digest"]
    assert (set_["at"], set_["channel"]) == ("20:00", "in_app")
    assert datetime.fromisoformat(set_["next_at"]) > datetime.now(UTC)
    assert api.call("ann", "GET", "/v1/digest").json()["digest"] == set_

    api.call("ann", "POST", "/v1/channels", json={"name": "mail", "url": "json://x.invalid/"})
    moved = api.call("ann", "PUT", "/v1/digest", json={"channel": "mail"}).json()["digest"]
    assert (moved["at"], moved["channel"]) == ("20:00", "mail")
    # Bob cannot send his digest to Ann's channel; the error lists his own only.
    bobs = api.call("bob", "PUT", "/v1/digest", json={"at": "08:00", "channel": "mail"})
    assert "in_app" in _problem(bobs, 422, "channel")["detail"]
    assert api.call("bob", "GET", "/v1/digest").json()["digest"] is None
    _problem(api.call("ann", "PUT", "/v1/digest", json={"at": "25:00"}), 422, "at")

    assert api.call("ann", "DELETE", "/v1/digest").status_code == 204
    assert api.call("ann", "GET", "/v1/digest").json()["digest"] is None


# --- exports and imports -----------------------------------------------------------------------


def _task_counts(db: Db, ids: dict[str, int]) -> dict[str, int]:
    return {
        who: db.scalar("SELECT count(*) FROM ai_tasks WHERE user_id = :u", u=user_id)
        for who, user_id in ids.items()
    }


def test_export_then_import_into_the_caller_only(api: Api, url: str) -> None:
    db = Db(url)
    daily = {"kind": "daily", "times": ["09:00"]}
    for title in ("Stretch", "Water"):
        made = api.call("ann", "POST", "/v1/tasks", json={"title": title, "schedule": daily})
        assert made.status_code == 201
    exported = api.call("ann", "GET", "/v1/export")
    assert exported.status_code == 200
    document = exported.json()
    assert (document["format"], document["version"]) == ("personal-assistant-export", 1)
    assert document["user"]["display_name"] == "Ann"
    assert [t["title"] for t in document["tasks"]] == ["Stretch", "Water"]
    assert api.call("bob", "GET", "/v1/export").json()["tasks"] == []
    before = _task_counts(db, api.ids)
    assert before == {"ann": 2, "bob": 0}

    # Bob imports Ann's export: it lands in Bob's account, whatever the document says.
    document["user"]["display_name"] = "Bob the second"
    imported = api.call("bob", "POST", "/v1/import", json=document)
    assert imported.status_code == 200, imported.text
    assert imported.json() == {
        "user_id": api.ids["bob"],
        "created_user": False,
        "tasks": 2,
        "runs": 0,
        "notifications": 0,
    }
    assert _task_counts(db, api.ids) == {"ann": 2, "bob": 2}
    assert db.scalar("SELECT count(*) FROM users") == 2
    assert api.call("bob", "GET", "/v1/me").json()["display_name"] == "Bob"
    _problem(api.call("bob", "POST", "/v1/import", json=document), 409, "tasks[0]")

    # A row naming Ann as its owner is refused, and writes nothing anywhere.
    document["tasks"][0]["user_id"] = api.ids["ann"]
    sneaky = api.call("bob", "POST", "/v1/import", json=document)
    assert sneaky.status_code == 422, sneaky.text
    assert _task_counts(db, api.ids) == {"ann": 2, "bob": 2}


def test_an_import_that_is_not_an_export_is_refused(api: Api, url: str) -> None:
    headers = {"content-type": "application/json"}
    bad = api.call("ann", "POST", "/v1/import", content=b"{not json", headers=headers)
    _problem(bad, 422, "file")
    deep = b"[" * 100_000
    _problem(api.call("ann", "POST", "/v1/import", content=deep, headers=headers), 422, "file")
    _problem(api.call("ann", "POST", "/v1/import", json={"format": "other"}), 422, "format")
    huge = json.dumps({"format": "x", "padding": "y" * 2_000_000}).encode()
    too_big = api.call("ann", "POST", "/v1/import", content=huge, headers=headers)
    _problem(too_big, 413, "body")
    assert Db(url).scalar("SELECT count(*) FROM ai_tasks") == 0


# --- the doctor --------------------------------------------------------------------------------


def test_the_doctor_answers_admins_only(api: Api) -> None:
    _problem(api.call("bob", "GET", "/v1/doctor"), 403, "Authorization")
    answer = api.call("ann", "GET", "/v1/doctor")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    report = answer.json()
    assert report["exit_code"] in (0, 1, 2)
    assert sum(report["summary"].values()) == len(report["checks"]) > 0
    ids = {check["id"] for check in report["checks"]}
    assert any(i.startswith("database.") for i in ids)
    assert not any(i.startswith("canary") for i in ids)
    _problem(api.call("ann", "GET", "/v1/doctor", params={"timeout": 0}), 422, "timeout")
