"""An export builds and renders its document off the event loop (issue 9, item 1a).

A worker process runs every AI run on one event loop: a big export's CPU work (turning rows
into the document, then into JSON or a CSV zip) must not run on it. The test records the
thread each step runs in; the database is read on the loop, as it must be.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from personal_assistant.config import Settings
from personal_assistant.database.engine import make_async_engine
from personal_assistant.exports import document
from personal_assistant.exports import store as exports
from personal_assistant.tasks.manager import AITaskManager
from support.stack import run

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_an_export_is_built_and_rendered_off_the_event_loop(
    url: str, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: dict[str, int] = {}
    for name in ("build_document", "render"):
        original = getattr(exports, name)

        def recording(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            threads[_name] = threading.get_ident()
            return _original(*args, **kw)

        monkeypatch.setattr(exports, name, recording)

    async def export() -> tuple[exports.Exported, int]:
        settings = Settings(DATABASE_URL=url)  # type: ignore[call-arg]
        async with AITaskManager(settings) as manager:
            ada = await manager.create_user("Ada", timezone="Europe/Paris")
            await manager.create_task(
                ada.id, "Stand-up", schedule={"kind": "daily", "times": ["09:00"]}
            )
        engine = make_async_engine(url, pooled=False)
        try:
            done = await exports.export_user(
                engine, ada.id, tmp_path, fmt=document.export_format(fmt), now=NOW
            )
        finally:
            await engine.dispose()
        return done, threading.get_ident()

    done, loop_thread = run(export())
    assert done.tasks == 1 and done.path.exists()
    assert set(threads) == {"build_document", "render"}
    assert loop_thread not in threads.values(), threads
