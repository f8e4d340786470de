"""Fixtures of the browser tests: Debian's chromium (``/usr/bin/chromium``) driven by
Playwright, and where the screenshots go (``PA_SCREENSHOTS``, else the test's own directory).

No browser is downloaded: without chromium the tests skip, or fail when ``CI`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from support.services import require

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """A headless chromium for one test. Not shared by the session: while Playwright's sync
    API is open, its event loop counts as running in this thread, and every later test of the
    process that calls ``asyncio.run`` would fail."""
    require(CHROMIUM.exists(), f"chromium ({CHROMIUM})")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the test saves its screenshots: ``$PA_SCREENSHOTS``, else its tmp_path."""
    chosen = os.environ.get("PA_SCREENSHOTS")
    where = Path(chosen) if chosen else tmp_path / "screenshots"
    where.mkdir(parents=True, exist_ok=True)
    return where
