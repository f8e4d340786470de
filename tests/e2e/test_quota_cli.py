"""Per-user quotas as a user of ``pa`` meets them: one line naming the limit, exit code 7.

Before (issue 10, item 9) nothing was limited: a third task past a limit of two was created,
and an import of any size went through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.cli import ready

pytestmark = pytest.mark.e2e

QUOTA_EXIT = 7


def test_a_task_past_the_active_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    pa = ready(tmp_path)
    pa.env["MAX_ACTIVE_TASKS_PER_USER"] = "2"
    pa.ok("task", "add", "one", "--daily", "09:00")
    pa.ok("task", "add", "two", "--daily", "09:00")
    err = pa.fails(QUOTA_EXIT, "task", "add", "three", "--daily", "09:00")
    assert err.startswith(
        "error: MAX_ACTIVE_TASKS_PER_USER: user 1 has 2 active or paused tasks and may have "
        "at most 2: one more would pass the limit"
    ), err
    assert len(err.strip().splitlines()) == 1, err  # no traceback
    assert len(pa.json("task", "list")) == 2


def test_an_import_past_the_hourly_limit_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    pa = ready(tmp_path)
    for title in ("one", "two", "three"):
        pa.ok("task", "add", title, "--daily", "09:00")
    path = pa.json("export")["path"]
    pa.env["MAX_IMPORTS_PER_HOUR"] = "2"
    err = pa.fails(QUOTA_EXIT, "import", path)
    assert err.startswith(
        "error: MAX_IMPORTS_PER_HOUR: user 2 may import at most 2 tasks per hour; this file "
        "holds 3, after 0 tasks imported in the last hour"
    ), err
    assert len(err.strip().splitlines()) == 1, err
    assert [user["display_name"] for user in pa.json("user", "list")] == ["Ada"]
