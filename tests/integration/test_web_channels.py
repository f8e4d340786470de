"""The dashboard's channels page and sign-in landing, on real databases (PostgreSQL and
SQLite), served by uvicorn with the API (``create_site``) and called with httpx as a browser
without script would.

A channel is added with the form and listed with its URL masked (the URL typed is never shown
again, not even on the form after an error); an internal destination is refused naming
``url``, with the reason, and nothing is stored; a test send says why it did not deliver;
"Remove" removes; every form without the visitor's token is 403 and changes nothing; another
user's channel is the 404 page. Signing in lands on the page first asked for, and only ever on
a path of this site.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from personal_assistant.notifications.channels import mask_apprise_url
from support.keys import CHANNEL_KEY
from support.web import Site, csrf_of, serve_site, sign_in

pytestmark = pytest.mark.integration

#: A webhook on a host that does not resolve (``.invalid``): it can be added, never delivered.
#: Its password and token are secrets no page may show.
HOOK = "json://hook-user:pa55-Secret-Word@hooks.invalid/x?token=tok3n-Secret-Value"
SECRETS = ("pa55-Secret-Word", "tok3n-Secret-Value", HOOK)


@pytest.fixture
def site(url: str) -> Iterator[Site]:
    with serve_site({"DATABASE_URL": url, "CHANNEL_KEYS": CHANNEL_KEY}) as served:
        yield served


def _add_hook(client: httpx.Client, token: str, name: str = "hooks") -> None:
    added = client.post("/channels", data={"name": name, "url": HOOK, "csrf": token})
    assert added.status_code == 303, added.text
    assert added.headers["location"] == "/channels?done=channel-added"


def _shows_no_secret(html: str) -> None:
    for secret in SECRETS:
        assert secret not in html


def test_a_channel_is_added_listed_masked_tested_and_removed(site: Site) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        page = client.get("/channels").text
        assert '<label for="name">Name</label>' in page
        assert '<label for="url">Apprise URL</label>' in page
        assert 'action="/channels"' in page

        _add_hook(client, token)
        listed = client.get("/channels?done=channel-added")
        assert listed.status_code == 200
        assert "Channel added." in listed.text
        masked = mask_apprise_url(HOOK)
        assert masked != HOOK and "hooks.invalid" in masked
        assert f'<code class="text">{masked.replace("&", "&amp;")}</code>' in listed.text
        _shows_no_secret(listed.text)
        assert 'action="/channels/hooks/test"' in listed.text
        assert 'action="/channels/hooks/remove" data-confirm="Remove the channel hooks?' in (
            listed.text
        )
        [stored] = site.channels_of("ann")
        assert stored.name == "hooks" and stored.kind == "webhook"

        taken = client.post("/channels", data={"name": "hooks", "url": HOOK, "csrf": token})
        assert taken.status_code == 409
        assert 'id="name-error"' in taken.text and "<strong>name</strong>" in taken.text
        _shows_no_secret(taken.text)

        tested = client.post("/channels/hooks/test", data={"csrf": token})
        assert tested.status_code == 200
        said = re.search(r'<p class="error" role="status">([^<]+)</p>', tested.text)
        assert said, tested.text
        assert said[1].startswith("Test through hooks not delivered (")
        assert "could not connect" in said[1]  # the reason: the host does not resolve
        _shows_no_secret(tested.text)

        gone = client.post("/channels/hooks/remove", data={"csrf": token})
        assert gone.status_code == 303
        assert gone.headers["location"] == "/channels?done=channel-removed"
        after = client.get(gone.headers["location"]).text
        assert "Channel removed" in after and "hooks.invalid" not in after
    assert site.channels_of("ann") == []


@pytest.mark.parametrize(
    ("destination", "says"),
    [
        ("json://127.0.0.1/x", "refused destination: not a public address"),
        ("json://169.254.169.254/", "refused destination: not a public address"),
        ("http://127.0.0.1/x", "scheme http:// is not supported"),
        ("http://169.254.169.254/", "scheme http:// is not supported"),
        ("", "must not be empty"),
    ],
)
def test_an_internal_or_bad_url_is_refused_naming_the_url(
    site: Site, destination: str, says: str
) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        refused = client.post(
            "/channels", data={"name": "inside", "url": destination, "csrf": token}
        )
        assert refused.status_code == 422
        error = re.search(r'<p class="error" id="url-error" role="alert">(.+?)</p>', refused.text)
        assert error, refused.text
        assert error[1].startswith("<strong>url</strong>: ") and says in error[1]
        assert 'id="url" name="url"' in refused.text and 'aria-invalid="true"' in refused.text
        assert 'value="inside"' in refused.text  # the name is kept
        if destination:
            assert destination not in refused.text  # the URL typed is not shown again
    assert site.channels_of("ann") == []


def test_a_bad_name_is_refused_naming_the_name(site: Site) -> None:
    with site.client() as client:
        token = sign_in(client, site.keys["ann"])
        for name in ("Not A Slug", "in_app", ""):
            refused = client.post("/channels", data={"name": name, "url": HOOK, "csrf": token})
            assert refused.status_code == 422, name
            assert 'id="name-error"' in refused.text and "<strong>name</strong>" in refused.text
            _shows_no_secret(refused.text)
    assert site.channels_of("ann") == []


def test_a_channel_form_without_the_token_is_403_and_changes_nothing(site: Site) -> None:
    with site.client() as client, site.client() as other:
        token = sign_in(client, site.keys["ann"])
        _add_hook(client, token)
        bob_token = sign_in(other, site.keys["bob"])
        for data in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": bob_token}):
            added = client.post("/channels", data={"name": "more", "url": HOOK, **data})
            assert added.status_code == 403, data
            assert "security token" in added.text
            for action in ("test", "remove"):
                answer = client.post(f"/channels/hooks/{action}", data=data)
                assert answer.status_code == 403, (action, data)
    assert [c.name for c in site.channels_of("ann")] == ["hooks"]


def test_another_users_channel_is_the_404_page(site: Site) -> None:
    with site.client() as client, site.client() as other:
        _add_hook(client, sign_in(client, site.keys["ann"]))
        bob = sign_in(other, site.keys["bob"])
        assert "hooks.invalid" not in other.get("/channels").text
        for name in ("hooks", "nothing-here"):
            for action in ("test", "remove"):
                answer = other.post(f"/channels/{name}/{action}", data={"csrf": bob})
                assert answer.status_code == 404, (name, action)
                assert answer.headers["content-type"].startswith("text/html")
                assert "Not found" in answer.text
                _shows_no_secret(answer.text)
    assert [c.name for c in site.channels_of("ann")] == ["hooks"]


def test_signing_in_lands_on_the_page_first_asked_for(site: Site) -> None:
    with site.client() as client:
        asked = client.get("/channels?done=channel-added")
        assert asked.status_code == 303
        landing = "/channels?done=channel-added"
        assert asked.headers["location"] == f"/signin?next={quote(landing, safe='')}"
        form = client.get(asked.headers["location"])
        assert f'name="next" value="{landing}"' in form.text.replace("&amp;", "&")
        refused = client.post(
            "/signin", data={"key": "pa_wrong", "next": landing, "csrf": csrf_of(form.text)}
        )
        assert refused.status_code == 401  # a refused key keeps where to land
        assert f'name="next" value="{landing}"' in refused.text.replace("&amp;", "&")
        done = client.post(
            "/signin",
            data={"key": site.keys["ann"], "next": landing, "csrf": csrf_of(form.text)},
        )
        assert done.status_code == 303
        assert done.headers["location"] == landing
        assert "Channel added." in client.get(landing).text


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example/x",
        "///evil.example",
        " /inbox",
        "/signout",
    ],
)
def test_signing_in_never_lands_on_another_site(site: Site, target: str) -> None:
    with site.client() as client:
        form = client.get("/signin", params={"next": target})
        assert 'name="next"' not in form.text  # only a local path is kept
        done = client.post(
            "/signin", data={"key": site.keys["ann"], "next": target, "csrf": csrf_of(form.text)}
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/"
