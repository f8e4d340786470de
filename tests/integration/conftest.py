"""Fixtures of the integration tests: ``url``, a migrated database of the test's own on each
backend the package supports (PostgreSQL, and SQLite as the embedded default uses it)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest) -> str:
    """The test runs once on each backend (a file may define its own ``url``)."""
    fixture = "database_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(fixture))
