"""The exports part of the façade: a user's tasks, runs and notifications to a file, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personal_assistant.app._base import Part
from personal_assistant.exports import document, files, store
from personal_assistant.tasks import quotas


class Exports(Part):
    """Exports written under ``EXPORT_DIR`` (or where asked) and imports of JSON exports."""

    async def export(
        self, user_id: int, fmt: document.ExportFormat, *, out: Path | None = None
    ) -> store.Exported:
        """Write the user's export to ``out``: a file, or a directory for a generated name;
        default: a new file in the settings' ``EXPORT_DIR``."""
        now = self.clock()
        path = out
        if path is not None and path.is_dir():
            path = path / files.export_filename(user_id, fmt, now)
        export_dir = files.settings_export_dir(self.settings)
        return await store.export_user(
            self.engine, user_id, export_dir, fmt=fmt, now=now, path=path
        )

    async def document(self, user_id: int) -> dict[str, Any]:
        """The user's JSON export document itself (what ``pa export`` writes), no file."""
        return await store.read_document(self.engine, user_id, now=self.clock())

    async def import_(self, data: object, *, user_id: int | None = None) -> store.ImportReport:
        """Import a decoded JSON export into ``user_id``, or into a new user made from it: all
        of it in one transaction, within the owner's quotas, or nothing."""
        limits = quotas.Limits.from_settings(self.settings)
        return await store.import_export(
            self.engine, data, user_id=user_id, now=self.clock(), limits=limits
        )
