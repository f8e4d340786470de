"""The dashboard's "Say it" field on real databases (PostgreSQL and SQLite), served by uvicorn
with the API (``create_site``) and called with httpx as a browser without script would.

Reading a request shows its title, instruction, type, schedule in words, zone and next three
firings, and creates nothing; "Create this task" creates exactly the reading shown (the
schedule posted back, not read again); "Edit before creating" fills the task form; a refusal
shows its reason, keeps the text, and offers the closest reading (and a second one) with
working buttons; bad input is a clear refusal, never a 500, and is escaped; a post without the
visitor's token is 403 and creates nothing; another user sees nothing of it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from personal_assistant.core.phrases import Proposal, Refusal
from personal_assistant.tasks.manager import AITaskManager
from support.web import Site, csrf_of, serve_site, sign_in

pytestmark = pytest.mark.integration

STRETCH = "every weekday at 8:30 remind me to stretch"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def site(url: str) -> Iterator[Site]:
    with serve_site({"DATABASE_URL": url}) as served:
        yield served


def _forms(page: str, action: str) -> list[dict[str, Any]]:
    """The hidden fields of each form of ``page`` posting to ``action``, unescaped (a field
    given twice, as ``weekdays``, is a list)."""
    found = []
    for block in re.findall(rf'<form method="post" action="{action}">(.*?)</form>', page, re.S):
        fields: dict[str, Any] = {}
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]+)" value="([^"]*)">', block
        ):
            value = html.unescape(value)
            if name in fields:
                previous = fields[name]
                fields[name] = (
                    [*previous, value] if isinstance(previous, list) else [previous, value]
                )
            else:
                fields[name] = value
        found.append(fields)
    return found


def _firings(page: str) -> list[datetime]:
    return [datetime.fromisoformat(t) for t in re.findall(r'<time datetime="([^"]+)"', page)]


def _read(client: httpx.Client, token: str, text: str) -> httpx.Response:
    return client.post("/tasks/say", data={"text": text, "csrf": token})


def test_the_tasks_page_has_the_say_it_field(site: Site) -> None:
    with site.client() as client:
        sign_in(client, site.keys["ann"])
        for path in ("/", "/tasks/say"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert '<label for="say">Say it</label>' in page.text
            assert 'maxlength="500"' in page.text and 'name="text"' in page.text
            assert 'placeholder="every weekday at 8:30 remind me to stretch"' in page.text
            assert '<form class="card say" method="post" action="/tasks/say">' in page.text
            assert ">Read</button>" in page.text
            assert "<script>" not in page.text and " style=" not in page.text


def test_a_reading_shows_its_parts_and_next_three_firings_and_creates_nothing(
    site: Site,
) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = _read(client, token, STRETCH)
    assert page.status_code == 200, page.text
    text = page.text
    assert "The reading" in text
    for part in ("Stretch", "Remind me to stretch", "reminder", "Europe/Paris"):
        assert f"<dd>{part}</dd>" in text or f'<dd class="text">{part}</dd>' in text, part
    assert "<dd>weekly on mon, tue, wed, thu, fri at 08:30 (Europe/Paris)</dd>" in text
    assert "by the model" not in text  # read offline only: not said
    firings = _firings(text)
    assert len(firings) == 3 and firings == sorted(firings)
    for moment in firings:
        local = moment.astimezone(PARIS)
        assert (local.hour, local.minute) == (8, 30) and local.weekday() < 5
    assert f'value="{STRETCH}"' in text  # the text stays in the field
    assert ">Create this task</button>" in text and ">Edit before creating</button>" in text
    assert site.tasks_of("ann") == []


@pytest.mark.parametrize("said", [STRETCH, "in 20 minutes check the oven"])
def test_create_this_task_creates_exactly_the_reading(site: Site, said: str) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        [shown] = _forms(_read(client, token, said).text, "/tasks/say/create")
        made = client.post("/tasks/say/create", data=shown)
        assert made.status_code == 303, made.text
        location = made.headers["location"]
        assert re.fullmatch(r"/tasks/\d+\?done=created", location)
        landed = client.get(location).text
        assert "Task created." in landed and html.escape(shown["title"]) in landed
        task_id = int(location.split("/")[2].split("?")[0])
        api = client.get(
            f"/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {site.keys['ann']}"}
        ).json()
    schedule = json.loads(shown["schedule"])
    [task] = site.tasks_of("ann")
    assert (task.id, task.title, task.description) == (
        task_id,
        shown["title"],
        shown["instruction"],
    )
    assert task.task_type == shown["task_type"]
    assert task.schedule == schedule == api["schedule"]  # a one-shot keeps the instant read
    assert task.notification_channels == ["in_app"]


def test_edit_before_creating_fills_the_task_form(site: Site) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        [edit] = _forms(_read(client, token, STRETCH).text, "/tasks/new")
        form = client.post("/tasks/new", data={**edit, "action": "preview"})
    assert form.status_code == 200, form.text
    text = form.text
    assert 'id="title" name="title" type="text" maxlength="200" required value="Stretch"' in text
    assert ">Remind me to stretch</textarea>" in text
    assert '<option value="weekly" selected>' in text
    for day in ("mon", "tue", "wed", "thu", "fri"):
        assert f'name="weekdays" value="{day}" checked' in text
    assert 'name="weekdays" value="sat" checked' not in text
    assert 'value="08:30"' in text and "weekly on mon, tue, wed, thu, fri at 08:30" in text
    assert site.tasks_of("ann") == []


def test_every_other_tuesday_edits_with_its_step_kept(site: Site) -> None:
    """The form's "Repeat every" field holds the weekly step, so editing keeps it."""
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = _read(client, token, "every other Tuesday at 6pm put out the bins")
        assert "<dd>every 2 weeks on tue at 18:00 (Europe/Paris), from " in page.text
        [edit] = _forms(page.text, "/tasks/new")
        assert edit["step"] == "2"
        form = client.post("/tasks/new", data={**edit, "action": "preview"})
    assert form.status_code == 200, form.text
    assert 'id="step" name="step" type="number" min="1" max="366"' in form.text
    assert 'value="2"' in form.text
    assert "every 2 weeks on tue at 18:00 (Europe/Paris)" in form.text
    firings = _firings(form.text)
    assert len(firings) >= 3
    for moment in firings:
        local = moment.astimezone(PARIS)
        assert (local.weekday(), local.hour) == (1, 18)  # Tuesdays 18:00, whatever the DST
    assert site.tasks_of("ann") == []


def test_a_refusal_shows_the_reason_and_the_closest_reading_with_its_button(site: Site) -> None:
    said = "every day at 25:00 stretch"
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = _read(client, token, said)
        assert page.status_code == 422
        assert 'role="alert">Not sure: 25:00 is not a time.</p>' in page.text
        assert f'value="{said}"' in page.text and 'aria-invalid="true" autofocus' in page.text
        assert "Did you mean:" in page.text and "Or:" not in page.text
        assert "<dd>daily at 09:00 (Europe/Paris)</dd>" in page.text
        assert len(_firings(page.text)) == 3
        [closest] = _forms(page.text, "/tasks/say/create")
        made = client.post("/tasks/say/create", data=closest)
        assert made.status_code == 303, made.text
    [task] = site.tasks_of("ann")
    assert task.title == "Stretch" and task.schedule["times"] == ["09:00"]


def test_a_second_reading_is_offered_beside_the_closest(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def daily(at: str, source: str) -> Proposal:
        schedule = {"kind": "daily", "times": [at], "timezone": "Europe/Paris"}
        return Proposal("Stretch", "Stretch", "reminder", schedule, (), source)

    async def propose(self: AITaskManager, user_id: int, text: str) -> Proposal | Refusal:
        closest, other = daily("09:00", "offline"), daily("10:00", "model")
        return Refusal("Not sure: the readers differ.", closest, other=other)

    monkeypatch.setattr(AITaskManager, "propose_task", propose)
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = _read(client, token, "stretch at nine or ten daily")
        assert page.status_code == 422
        text = page.text
        assert text.index("Did you mean:") < text.index("09:00") < text.index("Or:")
        assert text.index("Or:") < text.index("<dd>read by the model</dd>")
        assert "<dd>daily at 10:00 (Europe/Paris)</dd>" in text
        _closest, other = _forms(text, "/tasks/say/create")
        assert client.post("/tasks/say/create", data=other).status_code == 303
    [task] = site.tasks_of("ann")
    assert task.schedule["times"] == ["10:00"]


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("", "The request is empty"),
        ("   ", "The request is empty"),
        ("x" * 10_000, "The request is 10000 characters long; at most 500 are read."),
        ("😀🎉😀", "The request has no words"),
        ("rappelle-moi demain à 9h d'appeler maman", "does not look like English"),
        ("stretch\x00 at 9", "control characters"),
        ("<script>alert(1)</script>", "Could not read when to do this"),
    ],
)
def test_bad_input_is_a_clear_refusal_never_a_500(site: Site, said: str, reason: str) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = _read(client, token, said)
        assert page.status_code == 422, page.text[:500]
        assert page.headers["content-type"].startswith("text/html")
        assert reason in page.text
        assert "<script>alert" not in page.text
        missing = client.post("/tasks/say", data={"csrf": token})  # no field at all
        assert missing.status_code == 422 and "The request is empty" in missing.text
    assert site.tasks_of("ann") == []


def test_markup_in_the_text_is_escaped_and_kept_as_text(site: Site) -> None:
    said = '<script>alert("x")</script> every day at 9'
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = _read(client, token, said)
        assert page.status_code == 200
        assert "<script>" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        [shown] = _forms(page.text, "/tasks/say/create")
        made = client.post("/tasks/say/create", data=shown)
        assert "<script>" not in client.get(made.headers["location"]).text
    [task] = site.tasks_of("ann")
    assert task.title == '<script>alert("x")</script>'


@pytest.mark.parametrize(
    "schedule",
    ["", "not json", "[]", '{"kind": "nope"}', '{"kind": "once", "at": "2000-01-01T09:00:00Z"}'],
)
def test_a_bad_reading_posted_back_is_refused_on_the_page(site: Site, schedule: str) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        fields = {"title": "Stretch", "task_type": "reminder", "text": STRETCH}
        page = client.post(
            "/tasks/say/create", data={**fields, "schedule": schedule, "csrf": token}
        )
        assert page.status_code == 422, page.text[:500]
        assert 'role="alert">Not created: schedule' in page.text
        assert f'value="{STRETCH}"' in page.text  # the text is back in the field
    assert site.tasks_of("ann") == []


def test_a_post_without_the_visitors_token_is_403_and_creates_nothing(site: Site) -> None:
    with site.client() as client, site.client() as other:
        token = sign_in(client, site.keys["ann"])
        bob_token = sign_in(other, site.keys["bob"])
        [shown] = _forms(_read(client, token, STRETCH).text, "/tasks/say/create")
        reading = {k: v for k, v in shown.items() if k != "csrf"}
        for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": bob_token}):
            assert client.post("/tasks/say", data={"text": STRETCH, **data}).status_code == 403
            answer = client.post("/tasks/say/create", data={**reading, **data})
            assert answer.status_code == 403 and "security token" in answer.text
        # Bob's browser posting Ann's form (her token) is refused too.
        assert other.post("/tasks/say/create", data=shown).status_code == 403
    assert site.tasks_of("ann") == [] and site.tasks_of("bob") == []


def test_another_user_sees_nothing_of_it(site: Site) -> None:
    with site.client() as client, site.client() as other:
        token = sign_in(client, site.keys["ann"])
        [shown] = _forms(_read(client, token, STRETCH).text, "/tasks/say/create")
        made = client.post("/tasks/say/create", data=shown).headers["location"]
        task_path = made.split("?")[0]
        bob_token = sign_in(other, site.keys["bob"])
        assert "Stretch" not in other.get("/").text
        assert other.get(task_path).status_code == 404
        # Bob's own reading is in his zone, and shows nothing of Ann's.
        page = _read(other, bob_token, STRETCH)
        assert "(America/New_York)" in page.text and "Europe/Paris" not in page.text
        signed_out = httpx.post(f"{site.base}/tasks/say", data={"text": STRETCH, "csrf": token})
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/signin"
    assert [t.title for t in site.tasks_of("ann")] == ["Stretch"] and site.tasks_of("bob") == []
    assert csrf_of(page.text) == bob_token
