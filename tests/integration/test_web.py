"""The web dashboard on real databases (PostgreSQL and SQLite), served by uvicorn with the API
(``create_site``) and called with httpx as a browser without script would.

Signing in sets an HttpOnly, SameSite=Strict cookie; signed out, every page goes to the sign-in
page; a POST without the form's token (or with another's) is 403 and changes nothing; another
user's task is the 404 page, as an unknown one; the forms create, edit, pause, resume and
delete; the preview answers the next firings or the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from personal_assistant.api.security import SECURE_HEADERS
from personal_assistant.app.assistant import Assistant
from personal_assistant.database.models import AITask
from personal_assistant.notifications.outbox import NewNotification, insert_notifications
from personal_assistant.web.site import create_site
from support import web
from support.api_server import serving
from support.stack import run, settings_for
from support.web import csrf_of, sign_in

pytestmark = pytest.mark.integration

PAGES = ("/", "/tasks/new", "/inbox", "/channels", "/health")
WEEKLY = {
    "title": "Stretch",
    "instruction": "Remind me to stretch.",
    "kind": "weekly",
    "timezone": "Europe/Paris",
    "weekdays": ["mon", "wed", "fri"],
    "times": "08:30",
    "task_type": "reminder",
    "channels": ["in_app"],
    "catch_up": "once",
    "max_retries": "3",
}


class Site(web.Site):
    """The site with Ann an admin and tasks of her own (:func:`_seed`)."""

    def task(self, task_id: int) -> AITask | None:
        """Ann's task ``task_id``, if she has it."""
        return next((t for t in self.tasks_of("ann") if t.id == task_id), None)


async def _seed(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    async with Assistant(settings_for(env)) as app:
        ann = await app.tasks.create_user("Ann", timezone="Europe/Paris", is_admin=True)
        bob = await app.tasks.create_user("Bob", timezone="America/New_York")
        at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        task = await app.tasks.create_task(
            ann.id, "Water the plants", schedule={"kind": "once", "at": at}
        )
        run_ = await app.tasks.run_now(task.id, ann.id)
        async with app.engine.begin() as conn:
            note = NewNotification(run_.id, task.id, ann.id, "in_app", "Plants", "Water them now.")
            [(note_id, _)] = await insert_notifications(
                conn, [note], now=datetime.now(UTC), sweep_at=datetime.now(UTC)
            )
        keys = {
            "ann": (await app.keys.create(ann.id, "laptop")).token,
            "bob": (await app.keys.create(bob.id, "phone")).token,
        }
        ids = {"ann": ann.id, "bob": bob.id, "task": task.id, "run": run_.id, "note": note_id}
        return keys, ids


@pytest.fixture
def site(url: str) -> Iterator[Site]:
    env = {"DATABASE_URL": url}
    keys, ids = run(_seed(env))
    with serving(create_site(settings_for(env))) as base:
        yield Site(base, env, keys, ids)


def test_signed_out_every_page_goes_to_sign_in(site: Site) -> None:
    with site.client() as client:
        for path in (*PAGES, f"/tasks/{site.ids['task']}", f"/tasks/{site.ids['task']}/edit"):
            answer = client.get(path)
            assert answer.status_code == 303, path
            landing = "/signin" if path == "/" else f"/signin?next={quote(path, safe='')}"
            assert answer.headers["location"] == landing  # signing in lands on the page
        posted = client.post(f"/tasks/{site.ids['task']}/pause", data={"csrf": "x"})
        assert posted.status_code == 303
        assert posted.headers["location"] == "/signin"
        client.cookies.set("pa_session", "pa_nope_not-a-key")
        assert client.get("/").headers["location"] == "/signin"
    assert site.task(site.ids["task"]).status == "active"  # type: ignore[union-attr]


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(site: Site) -> None:
    with site.client() as client:
        form = client.get("/signin")
        assert 'for="key"' in form.text and 'id="key"' in form.text
        refused = client.post("/signin", data={"key": "pa_wrong_key", "csrf": csrf_of(form.text)})
        assert refused.status_code == 401
        assert "not accepted" in refused.text
        assert "pa_session" not in refused.headers.get("set-cookie", "")

        form = client.get("/signin")
        done = client.post("/signin", data={"key": site.keys["ann"], "csrf": csrf_of(form.text)})
        assert done.status_code == 303
        cookie = done.headers["set-cookie"].lower()
        assert "pa_session=" in cookie
        for flag in ("httponly", "samesite=strict", "path=/"):
            assert flag in cookie, cookie
        home = client.get("/")
        assert home.status_code == 200
        assert "Water the plants" in home.text
        assert site.keys["ann"] not in home.text  # the key is in the cookie, never in a page
        token = csrf_of(home.text)

        out = client.post("/signout", data={"csrf": token})
        assert out.status_code == 303
        assert out.headers["location"] == "/signin"
        assert client.get("/").headers["location"] == "/signin"


def test_sign_in_without_the_forms_token_is_refused(site: Site) -> None:
    with site.client() as client:
        answer = client.post("/signin", data={"key": site.keys["ann"]})
        assert answer.status_code == 403
        assert "pa_session" not in answer.headers.get("set-cookie", "")
        client.get("/signin")  # the browser now has its sign-in cookie, but a foreign token:
        answer = client.post("/signin", data={"key": site.keys["ann"], "csrf": "forged"})
        assert answer.status_code == 403
        assert client.get("/").headers["location"] == "/signin"


def test_a_post_without_or_with_a_wrong_token_is_403_and_changes_nothing(site: Site) -> None:
    task_id = site.ids["task"]
    with site.client() as client, site.client() as other:
        good = sign_in(client, site.keys["ann"])
        bob_token = sign_in(other, site.keys["bob"])
        for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": bob_token}):
            for path in (f"/tasks/{task_id}/pause", f"/tasks/{task_id}/delete", "/signout"):
                answer = client.post(path, data=data)
                assert answer.status_code == 403, (path, data)
                assert "security token" in answer.text
            created = client.post("/tasks/new", data={**WEEKLY, **data})
            assert created.status_code == 403
            read = client.post("/inbox/read", data={"ids": str(site.ids["note"]), **data})
            assert read.status_code == 403
            assert client.post("/schedule/preview", data={**WEEKLY, **data}).status_code == 403
        assert client.get("/").status_code == 200  # still signed in: sign-out was refused
        # The token in the header (as the preview script sends it) is accepted.
        ok = client.post("/schedule/preview", data=WEEKLY, headers={"X-CSRF-Token": good})
        assert ok.status_code == 200
    task = site.task(task_id)
    assert task is not None and task.status == "active"
    assert [t.title for t in site.tasks_of("ann")] == ["Water the plants"]
    with site.client() as client:
        sign_in(client, site.keys["ann"])
        assert "new</span>" in client.get("/inbox").text  # still unread


def test_another_users_task_is_the_404_page(site: Site) -> None:
    task_id = site.ids["task"]
    with site.client() as client:
        token = sign_in(client, site.keys["bob"])
        assert "Water the plants" not in client.get("/").text
        assert "Plants" not in client.get("/inbox").text
        for path in (f"/tasks/{task_id}", f"/tasks/{task_id}/edit", "/tasks/987654", "/tasks/x"):
            answer = client.get(path, headers={"Accept": "text/html"})
            assert answer.status_code == 404, path
            assert answer.headers["content-type"].startswith("text/html")
            assert "Water the plants" not in answer.text
        for action in ("pause", "run", "delete", "edit"):
            answer = client.post(f"/tasks/{task_id}/{action}", data={**WEEKLY, "csrf": token})
            assert answer.status_code == 404, action
        client.post("/inbox/read", data={"ids": str(site.ids["note"]), "csrf": token})
    task = site.task(task_id)
    assert task is not None and task.status == "active" and task.title == "Water the plants"
    with site.client() as client:
        sign_in(client, site.keys["ann"])
        assert "new</span>" in client.get("/inbox").text  # Bob could not mark it read


def test_pages_show_the_users_data(site: Site) -> None:
    with site.client() as client:
        sign_in(client, site.keys["ann"])
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html")
            headers = {k.decode(): v.decode() for k, v in SECURE_HEADERS}
            assert answer.headers["content-security-policy"] == headers["content-security-policy"]
            assert "<script>" not in answer.text and " style=" not in answer.text
            assert 'href="#main"' in answer.text  # the skip link
        tasks = client.get("/").text
        assert "Water the plants" in tasks and "CET" in tasks  # the next firing, Paris time
        assert "queued" in tasks  # its last outcome: the queued run
        page = client.get(f"/tasks/{site.ids['task']}").text
        assert "Runs" in page and "queued" in page and "Next firings" in page
        inbox = client.get("/inbox").text
        assert "Plants" in inbox and "Water them now." in inbox
        assert '<span class="badge" aria-label="1 unread">1</span>' in tasks
        health = client.get("/health").text
        assert "Status:" in health and "<svg" in health and "Active tasks" in health
        assert "pa doctor" in health and "database" in health  # Ann is an admin: the checks
        assert "in_app" in client.get("/channels").text
        static = client.get("/static/dashboard.js")
        assert static.status_code == 200 and "livePreview" in static.text
        # The API beside it is unchanged: problems, not pages.
        api = client.get(
            "/v1/tasks/987654", headers={"Authorization": f"Bearer {site.keys['ann']}"}
        )
        assert api.status_code == 404
        assert api.headers["content-type"] == "application/problem+json"
    with site.client() as client:  # the deployment's checks are for admins
        sign_in(client, site.keys["bob"])
        health = client.get("/health").text
        assert "Status:" in health and "shown to admins" in health
        assert "database.reachable" not in health


def test_reading_a_notification_in_the_inbox(site: Site) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        done = client.post("/inbox/read", data={"ids": str(site.ids["note"]), "csrf": token})
        assert done.status_code == 303
        inbox = client.get(done.headers["location"]).text
        assert "Marked read." in inbox and "new</span>" not in inbox
        assert 'class="badge"' not in inbox


def test_the_preview_answers_the_next_firings_or_the_field_at_fault(site: Site) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["bob"])
        answer = client.post("/schedule/preview", data={**WEEKLY, "csrf": token})
        assert answer.status_code == 200
        firings = re.findall(r"<time datetime=\"([^\"]+)\"", answer.text)
        assert len(firings) == 5
        for moment in firings:  # Mondays, Wednesdays and Fridays at 08:30 in Paris
            paris = datetime.fromisoformat(moment).astimezone(_zone("Europe/Paris"))
            assert paris.strftime("%a %H:%M") in ("Mon 08:30", "Wed 08:30", "Fri 08:30")
        assert "weekly on mon, wed, fri at 08:30 (Europe/Paris)" in answer.text
        assert "EST" in answer.text  # shown in Bob's zone, New York

        for fields, named in (
            ({"times": "25:00"}, "times"),
            ({"kind": "cron", "expression": "61 * * * *"}, "expression"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"kind": "interval", "every": "10s"}, "every"),
            ({"kind": "monthly", "day": "40"}, "day"),
            ({"kind": "once", "at": "2001-01-01T10:00"}, "at"),
            ({"weekdays": []}, "weekdays"),
        ):
            bad = client.post("/schedule/preview", data={**WEEKLY, **fields, "csrf": token})
            assert bad.status_code == 422, fields
            assert f"<strong>{named}</strong>" in bad.text, (fields, bad.text)


def test_the_forms_create_edit_pause_resume_and_delete(site: Site) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        bad = client.post("/tasks/new", data={**WEEKLY, "times": "8h", "csrf": token})
        assert bad.status_code == 422
        assert 'aria-invalid="true"' in bad.text and "<strong>times</strong>" in bad.text
        assert 'value="Stretch"' in bad.text  # what was typed is kept
        preview = client.post("/tasks/new", data={**WEEKLY, "action": "preview", "csrf": token})
        assert preview.status_code == 200 and "weekly on mon, wed, fri" in preview.text
        assert len(site.tasks_of("ann")) == 1  # neither made a task

        made = client.post("/tasks/new", data={**WEEKLY, "action": "save", "csrf": token})
        assert made.status_code == 303
        location = made.headers["location"]
        task_id = int(re.findall(r"/tasks/(\d+)", location)[0])
        assert "Task created." in client.get(location).text
        task = site.task(task_id)
        assert task is not None
        assert task.schedule["weekdays"] == ["mon", "wed", "fri"]
        assert task.timezone == "Europe/Paris"
        first_next = task.next_run_at

        edit = client.get(f"/tasks/{task_id}/edit").text
        assert 'value="08:30"' in edit and 'value="wed" checked' in edit
        same = client.post(f"/tasks/{task_id}/edit", data={**WEEKLY, "csrf": token})
        assert same.status_code == 303
        assert site.task(task_id).next_run_at == first_next  # type: ignore[union-attr]
        changed = {**WEEKLY, "title": "Stretch more", "weekdays": ["tue"], "times": "07:15"}
        saved = client.post(f"/tasks/{task_id}/edit", data={**changed, "csrf": token})
        assert saved.status_code == 303
        task = site.task(task_id)
        assert task is not None and task.title == "Stretch more"
        assert task.schedule["weekdays"] == ["tue"] and task.schedule["times"] == ["07:15"]

        for action, status in (("pause", "paused"), ("resume", "active")):
            done = client.post(f"/tasks/{task_id}/{action}", data={"csrf": token})
            assert done.status_code == 303
            assert site.task(task_id).status == status  # type: ignore[union-attr]
        again = client.post(f"/tasks/{task_id}/resume", data={"csrf": token})
        assert again.status_code == 409 and "already active" in again.text
        queued = client.post(f"/tasks/{task_id}/run", data={"csrf": token})
        assert "A run is queued" in client.get(queued.headers["location"]).text

        gone = client.post(f"/tasks/{task_id}/delete", data={"csrf": token})
        assert gone.status_code == 303 and gone.headers["location"] == "/?done=deleted"
        assert site.task(task_id) is None
        assert client.get(f"/tasks/{task_id}").status_code == 404


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_saving_an_interval_task_as_shown_keeps_its_anchor(site: Site) -> None:
    interval = {**WEEKLY, "kind": "interval", "every": "2h"}
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        made = client.post("/tasks/new", data={**interval, "csrf": token})
        task_id = int(re.findall(r"/tasks/(\d+)", made.headers["location"])[0])
        before = site.task(task_id)
        assert before is not None and "start" in before.schedule  # anchored when created
        edit = client.get(f"/tasks/{task_id}/edit").text
        shown = re.search(r'id="start" name="start" type="datetime-local" value="([^"]+)"', edit)
        assert shown, edit
        saved = client.post(
            f"/tasks/{task_id}/edit",
            data={**interval, "start": shown[1], "title": "Renamed", "csrf": token},
        )
        assert saved.status_code == 303
    after = site.task(task_id)
    assert after is not None and after.title == "Renamed"
    assert after.schedule == before.schedule and after.next_run_at == before.next_run_at
