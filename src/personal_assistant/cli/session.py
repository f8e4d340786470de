"""The one runner of a CLI command: the settings (read once, on first use) and one façade.

:func:`run` checks the schema, opens an :class:`~personal_assistant.app.assistant.Assistant`,
awaits the command's coroutine in a single ``asyncio.run`` and closes it; :func:`run_for` does
the same for the user the command acts for (``--user``/``PA_USER``, else the only user).
:func:`read` and :func:`read_for` do the same for a command that only reads and must answer at
once (``pa status``, ``pa task list``), on :class:`~personal_assistant.app.quick.QuickReads`:
one read-only driver connection, no SQLAlchemy, no event loop.
The façade, the settings and the schema check are imported when a command runs, not when
``pa`` starts: ``pa --help`` loads no database code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from personal_assistant.errors import ValidationError

if TYPE_CHECKING:
    from personal_assistant.app.assistant import Assistant
    from personal_assistant.app.quick import QuickReads
    from personal_assistant.config import Settings
    from personal_assistant.database.models import User

T = TypeVar("T")

#: What a command awaits: a coroutine function of the façade.
Work: TypeAlias = Callable[["Assistant"], Awaitable[T]]
#: What a per-user command awaits: a coroutine function of the façade and the user.
OwnerWork: TypeAlias = Callable[["Assistant", "User"], Awaitable[T]]
#: What a per-user command that only reads does: a function of the quick reads and a user id.
OwnerRead: TypeAlias = Callable[["QuickReads", int], T]


@cache
def settings() -> Settings:
    """The settings, read from the environment on first use (never at import)."""
    from personal_assistant.config import Settings

    return Settings.from_env()


def now() -> datetime:
    return datetime.now(UTC)


def run(work: Work[T], *, schema: bool = True) -> T:
    """Await ``work(app)`` after checking that the schema is current (``schema=False``: a
    command that reports on the schema itself, ``pa doctor``)."""
    import asyncio

    from personal_assistant.app.assistant import Assistant
    from personal_assistant.cli.schema import require_schema

    current = settings()
    if schema:
        require_schema(current.database_url)

    async def main() -> T:
        async with Assistant(current) as app:
            return await work(app)

    return asyncio.run(main())


def run_for(user_id: int | None, work: OwnerWork[T]) -> T:
    """Await ``work(app, owner)`` for the user named by ``--user``/``PA_USER``."""

    async def for_owner(app: Assistant) -> T:
        return await work(app, await select_user(app, user_id))

    return run(for_owner)


def read(work: Callable[[QuickReads], T]) -> T:
    """``work(reads)`` on :class:`~personal_assistant.app.quick.QuickReads`: one read-only
    driver connection, no SQLAlchemy and no event loop (``pa status``), once the schema is
    known to be current."""
    from personal_assistant.app.quick import QuickReads

    with QuickReads.open(settings()) as reads:
        return work(reads)


def read_for(user_id: int | None, work: OwnerRead[T]) -> T:
    """``work(reads, owner_id)`` for the user named by ``--user``/``PA_USER`` (``pa task list``)."""

    def for_owner(reads: QuickReads) -> T:
        owner = reads.user_id(user_id) if user_id is not None else only_user(reads.user_ids())
        return work(reads, owner)

    return read(for_owner)


async def select_user(app: Assistant, user_id: int | None) -> User:
    """The user named by ``--user``/``PA_USER``, else the only user; errors name ``--user``."""
    if user_id is not None:
        return await app.tasks.get_user(user_id)
    return only_user(await app.tasks.list_users())


U = TypeVar("U")


def only_user(users: list[U]) -> U:
    """The one user there is; none or several is a ValidationError naming ``--user``."""
    if len(users) == 1:
        return users[0]
    if not users:
        raise ValidationError("no user yet: create one with `pa user add NAME`", field="--user")
    raise ValidationError(
        f"{len(users)} users exist: pass --user ID or set PA_USER", field="--user"
    )
