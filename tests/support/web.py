"""The dashboard driven as a browser would, with httpx: its forms' tokens and signing in; and
:class:`Site`, the dashboard served for a test with Ann (Paris) and Bob (New York) and a key
each (:func:`serve_site`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from personal_assistant.app.assistant import Assistant
from personal_assistant.database.models import AITask
from personal_assistant.notifications.channel_store import Channel
from personal_assistant.web.site import create_site
from support.api_server import serving
from support.stack import run, settings_for


def csrf_of(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found[1]


def sign_in(client: httpx.Client, key: str) -> str:
    """Sign ``client`` in with ``key`` (landing on the tasks); the forms' token."""
    form = client.get("/signin")
    assert form.status_code == 200
    done = client.post("/signin", data={"key": key, "csrf": csrf_of(form.text)})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/"
    return csrf_of(client.get("/").text)


@dataclass
class Site:
    """The dashboard and API under test: its address, settings, and who is in it."""

    base: str
    env: dict[str, str]
    keys: dict[str, str]  # who -> API key
    ids: dict[str, int]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60, follow_redirects=False)

    def tasks_of(self, who: str) -> list[AITask]:
        async def read() -> list[AITask]:
            async with Assistant(settings_for(self.env)) as app:
                return await app.tasks.list_tasks(self.ids[who])

        return run(read())

    def channels_of(self, who: str) -> list[Channel]:
        async def read() -> list[Channel]:
            async with Assistant(settings_for(self.env)) as app:
                return await app.channels.list_for(self.ids[who])

        return run(read())


async def _ann_and_bob(env: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    async with Assistant(settings_for(env)) as app:
        ann = await app.tasks.create_user("Ann", timezone="Europe/Paris")
        bob = await app.tasks.create_user("Bob", timezone="America/New_York")
        keys = {
            "ann": (await app.keys.create(ann.id, "laptop")).token,
            "bob": (await app.keys.create(bob.id, "phone")).token,
        }
        return keys, {"ann": ann.id, "bob": bob.id}


@contextmanager
def serve_site(env: dict[str, str]) -> Iterator[Site]:
    """The dashboard on ``env``'s database, with Ann and Bob and a key each."""
    keys, ids = run(_ann_and_bob(env))
    with serving(create_site(settings_for(env))) as base:
        yield Site(base, env, keys, ids)
