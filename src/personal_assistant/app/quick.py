"""The reads that answer at once: ``pa task list`` and ``pa status``.

The full façade (:class:`~personal_assistant.app.assistant.Assistant`) loads SQLAlchemy, the
models and an event loop, about 0.2 s before its first query. :class:`QuickReads` reads the
same rows through one plain driver connection (:mod:`~personal_assistant.database.plain`),
with the same checks, the same statements and the same errors: the schema must be at the newest
revision, filters are checked by :class:`~personal_assistant.tasks.page.TaskPage`, and a
snapshot is read by the statements doctor and the HTTP API read it with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from personal_assistant.database import migrate, plain
from personal_assistant.errors import NotFoundError

if TYPE_CHECKING:
    from personal_assistant.config import Settings
    from personal_assistant.tasks.page import TaskPage, TaskRow
    from personal_assistant.workers.utils.health import Health


def _now() -> datetime:
    return datetime.now(UTC)


class QuickReads:
    """Read-only reads on one driver connection: open it with :meth:`open`."""

    def __init__(
        self, settings: Settings, reader: plain.PlainReader, clock: Callable[[], datetime] = _now
    ) -> None:
        self.settings = settings
        self._reader = reader
        self._clock = clock

    @classmethod
    @contextmanager
    def open(cls, settings: Settings, clock: Callable[[], datetime] = _now) -> Iterator[QuickReads]:
        """The reads on the configured database, once its schema is known to be current."""
        url = settings.database_url
        if migrate.sqlite_file_missing(url):
            migrate.require_head(None)  # never make the file by reading it
        with plain.reader(url) as reader:
            current = (
                reader.value("SELECT version_num FROM alembic_version")
                if reader.has_table("alembic_version")
                else None
            )
            migrate.require_head(None if current is None else str(current))
            yield cls(settings, reader, clock)

    def user_ids(self) -> list[int]:
        """Every user's id, in order."""
        return [int(row[0]) for row in self._reader.rows("SELECT id FROM users ORDER BY id")]

    def user_id(self, user_id: int) -> int:
        """``user_id`` if that user exists (NotFoundError naming ``user_id`` if not)."""
        from personal_assistant.tasks.inputs import known_id  # not for pa status

        known = known_id(user_id, "user")
        if self._reader.value("SELECT id FROM users WHERE id = :id", {"id": known}) is None:
            raise NotFoundError(f"user {known} not found", field="user_id")
        return known

    def task_page(self, page: TaskPage) -> list[TaskRow]:
        return page.read(self._reader)

    def health(self) -> Health:
        """What :meth:`~personal_assistant.app.system.System.health` says, read the same way."""
        from personal_assistant.health.liveness import stale_after_s
        from personal_assistant.redaction import mask_url
        from personal_assistant.workers.broker_ping import broker_error
        from personal_assistant.workers.utils.health import status_health
        from personal_assistant.workers.utils.snapshot_reads import read_snapshot

        snapshot = read_snapshot(self._reader, self._clock())
        stale = stale_after_s(self.settings.heartbeat_interval_seconds)
        broker = broker_error(self.settings)
        return status_health(snapshot, stale, mask_url(self.settings.broker_url), broker)
