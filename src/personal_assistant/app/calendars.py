"""The calendars part of the façade: a user's iCalendar feeds added, listed, synced, removed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from personal_assistant.app._base import Part
from personal_assistant.calendars import store

if TYPE_CHECKING:
    from personal_assistant.calendars.sync import SyncReport


class Calendars(Part):
    """One user's calendar feeds; each method is one transaction (a sync, its own few)."""

    async def add(self, user_id: int, spec: store.FeedSpec) -> store.Feed:
        """Subscribe ``user_id`` to the validated feed ``spec``; its first sync is due now."""
        async with self.engine.begin() as conn:
            return await store.add(conn, user_id, spec, now=self.clock())

    async def list_with_counts(self, user_id: int) -> tuple[list[store.Feed], dict[int, int]]:
        """The user's feeds, and the number of upcoming events of each (by feed id)."""
        async with self.engine.connect() as conn:
            feeds = await store.list_for(conn, user_id)
            return feeds, await store.upcoming_counts(conn, user_id, self.clock())

    async def sync(self, user_id: int, name: str) -> SyncReport:
        """Sync the user's feed ``name`` now, in this process; a feed's failure is in the report.

        The fetch and the reader (httpx, icalendar) are imported here, on first use: loading
        them with the façade would slow every command.
        """
        from personal_assistant.calendars import fetch, sandbox, sync

        async with self.engine.connect() as conn:
            feed = await store.get(conn, user_id, store.feed_name(name))
        return await sync.sync_feed(
            self.engine,
            feed.id,
            self.clock(),
            max_retries=self.settings.default_max_retries,
            fetch=fetch.fetcher(self.settings.outbound_policy),
            parse_limits=sandbox.Limits.from_settings(self.settings),
        )

    async def remove(self, user_id: int, name: str) -> store.Removed:
        """Delete the user's feed ``name``, its events and its reminders that have not run."""
        async with self.engine.begin() as conn:
            return await store.remove(conn, user_id, store.feed_name(name))
