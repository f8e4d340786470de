"""The dashboard driven as a browser would, with httpx: its forms' tokens and signing in."""

from __future__ import annotations

import re

import httpx


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
