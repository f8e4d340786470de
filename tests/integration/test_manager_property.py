"""Every public ``AITaskManager`` method, given any values, returns or raises a package error.

A non-integer id (``"1"``, ``1.0``, ``None``) used to spin at 100 % CPU forever: the manager
checked ids with ``record_id in range(-2**63, 2**63)``, and ``in`` on a ``range`` is a linear
scan for anything but an exact ``int`` (issue 10, item 7). The methods are enumerated with
:mod:`inspect`, so a method added later is driven too; each is called with arbitrary values
(its annotated types, and ints, floats, text, None, bools, lists and dicts) on a real
PostgreSQL database holding a user, a task, a run and a notification with small ids, so that
some calls go past the checks. A call must return or raise a
:class:`~personal_assistant.errors.PersonalAssistantError` within :data:`CALL_DEADLINE`.

Each call runs in a forked child process: a spin inside C code holds the GIL and never returns
to the interpreter loop, so no signal handler or watchdog thread of the process running it
(pytest-timeout's either method) can stop it. The parent waits on a pipe with a deadline and
kills the child: the example fails, with the method and its arguments, instead of hanging.
"""

from __future__ import annotations

import enum
import inspect
import os
import select
import signal
import time
import traceback
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from personal_assistant.config import Settings
from personal_assistant.errors import PersonalAssistantError
from personal_assistant.tasks.manager import AITaskManager
from support.stack import Db, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: Generous: a call that is not stuck takes milliseconds.
CALL_DEADLINE = 10.0

METHODS = sorted(
    name
    for name, member in inspect.getmembers(AITaskManager, inspect.iscoroutinefunction)
    if not name.startswith("_")
)


class Small(enum.IntEnum):
    """An ``int`` subclass: ``range`` membership is a linear scan for it too."""

    ONE = 1


HOSTILE = st.sampled_from(
    ["1", 1.0, None, True, False, 2**70, -(2**70), 2**63, -1, 0, Small.ONE, float("nan"), b"1"]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-1, max_value=3),  # the ids that exist
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=8),
    HOSTILE,
)
ANY = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=4),
    st.just({"kind": "daily", "times": ["09:00"]}),
    st.just(["in_app"]),
)


def _for_annotation(hint: object) -> st.SearchStrategy[Any]:
    """Values of the parameter's declared type (``Any`` read as ``object``)."""
    if hint is Any:
        return st.from_type(object)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if args and origin is not None:
        if origin in (typing.Union, types.UnionType):
            return st.one_of([_for_annotation(arg) for arg in args])
        if any(arg is Any for arg in args):
            hint = origin[tuple(object if arg is Any else arg for arg in args)]
    return _built(hint)


@st.composite
def _built(draw: st.DrawFn, hint: Any) -> Any:
    """An instance of ``hint``; a schedule dataclass checks itself when it is built
    (``__post_init__``), so a refused one is replaced by an arbitrary value."""
    try:
        return draw(st.from_type(hint))
    except PersonalAssistantError:
        return draw(ANY)


def _arguments(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for the method: every required one, the optional ones sometimes."""
    method: Callable[..., Any] = getattr(AITaskManager, name)
    hints = typing.get_type_hints(method)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for param in list(inspect.signature(method).parameters.values())[1:]:  # past self
        values = st.one_of(ANY, _for_annotation(hints.get(param.name, object)))
        target = required if param.default is inspect.Parameter.empty else optional
        target[param.name] = values
    return st.fixed_dictionaries(required, optional=optional)


def _seed(url: str) -> None:
    """A user, a task, a run and a notification, each with a small id."""
    db = Db(url)
    try:
        db.execute(
            "INSERT INTO users (display_name, timezone, created_at) VALUES ('Ada', 'UTC', now())"
        )
        db.execute(
            "INSERT INTO ai_tasks (user_id, title, description, task_type, schedule_kind, "
            "schedule, timezone, next_run_at, status, ai_context, notification_channels, "
            "catch_up, max_retries, consecutive_failures, created_at, updated_at) "
            "VALUES (1, 'T', '', 'reminder', 'daily', "
            '\'{"kind": "daily", "times": ["09:00"], "timezone": "UTC"}\', '
            "'UTC', now() + interval '1 day', 'active', '{}', '[\"in_app\"]', 'once', 3, 0, "
            "now(), now())"
        )
        db.execute(
            "INSERT INTO task_runs (task_id, scheduled_for, state, attempt, queued_at, "
            "finished_at, result) VALUES (1, now() - interval '1 hour', 'succeeded', 1, "
            "now() - interval '1 hour', now(), 'done')"
        )
        db.execute(
            "INSERT INTO notifications (run_id, task_id, user_id, channel, status, title, body, "
            "attempts, created_at, delivered_at) VALUES (1, 1, 1, 'in_app', 'delivered', 'T', "
            "'done', 0, now(), now())"
        )
    finally:
        db.close()


def test_every_public_method_is_driven() -> None:
    """The enumeration sees the methods, and would see a new one."""
    assert {"create_task", "get_task", "mark_notifications_read", "run_now"} <= set(METHODS)


def _call_in_child(manager: AITaskManager, name: str, kwargs: dict[str, Any]) -> str | None:
    """Call ``manager.<name>(**kwargs)`` in a forked child; None if it returned or raised a
    package error, else what went wrong (the traceback, or that it did not finish in time)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report on the pipe, then leave without running any cleanup
        os.close(read_end)
        status = 0
        try:
            run(_call(manager, name, kwargs))
        except PersonalAssistantError:
            pass
        except BaseException:
            os.write(write_end, traceback.format_exc().encode(errors="replace"))
            status = 1
        os._exit(status)
    os.close(write_end)
    try:
        report = _read_until_eof(read_end, time.monotonic() + CALL_DEADLINE)
    except BaseException:  # pytest-timeout or Ctrl-C: no child is left spinning
        report = None
        raise
    finally:
        os.close(read_end)
        if report is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if report is None:
        return f"did not return within {CALL_DEADLINE} s"
    _, status = os.waitpid(pid, 0)
    return None if status == 0 else report or f"the child ended with status {status}"


def _read_until_eof(fd: int, deadline: float) -> str | None:
    """Everything written to ``fd`` until its writer closed it; None past ``deadline``."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode()
        chunks.append(chunk)


async def _call(manager: AITaskManager, name: str, kwargs: dict[str, Any]) -> None:
    try:
        await getattr(manager, name)(**kwargs)
    finally:
        await manager.close()


@pytest.mark.parametrize("name", METHODS)
def test_any_values_return_or_raise_a_package_error(database_url: str, name: str) -> None:
    _seed(database_url)
    manager = AITaskManager(Settings(DATABASE_URL=database_url))  # type: ignore[call-arg]

    @settings(
        max_examples=16,
        deadline=None,  # the deadline is CALL_DEADLINE's, in the parent; no timed assertion
        derandomize=True,  # the same examples every run: a failure reproduces, none flickers
        database=None,
        # No shrinking: a stuck call costs CALL_DEADLINE per replay, and the examples are
        # small already.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(kwargs=_arguments(name))
    def check(kwargs: dict[str, Any]) -> None:
        problem = _call_in_child(manager, name, kwargs)
        assert problem is None, f"{name}(**{kwargs!r}): {problem}"

    check()
