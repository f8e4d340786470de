"""The calendars part of the façade: a user's iCalendar feeds added, listed, synced, removed."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from personal_assistant.app._base import Part
from personal_assistant.calendars import store

if TYPE_CHECKING:
    from personal_assistant.calendars.sync import SyncReport


class Calendars(Part):
    """One user's calendar feeds; each method is one transaction (a sync, its own few)."""

    async def add(
        self, user_id: int, spec: store.FeedSpec, *, check_destination: bool = False
    ) -> store.Feed:
        """Subscribe ``user_id`` to the validated feed ``spec``; its first sync is due now.

        ``check_destination``: refuse at once (:class:`~personal_assistant.outbound.
        RefusedDestination`, field ``url``) a feed whose host resolves to an address the
        outbound policy refuses, as the API does; without it (the CLI) the first sync refuses
        it, without connecting. A name that does not resolve now is left to the sync.
        """
        if check_destination:
            from personal_assistant.outbound import sockets

            host = urlsplit(spec.url).hostname or ""
            await asyncio.to_thread(sockets.check_host, host, self.settings.outbound_policy)
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
