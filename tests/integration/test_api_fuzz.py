"""The HTTP API fuzzed from its own OpenAPI document (schemathesis 4), served for real.

Every operation the app publishes is fuzzed (the document is read when the tests are
collected, so a route added later is covered without a change here), on PostgreSQL and on
SQLite: on each, a fresh migrated database (:func:`backend`) and the app under uvicorn on
loopback (:func:`support.api_server.serving`), shared by the operations in turn. The caller is
an admin with a real API key (``Authorization: Bearer``), so admin routes answer too, and the
database is seeded: a path id or name is one of the caller's real objects about half of the
time (:meth:`Fuzz.aim`), an arbitrary value the rest; half of the positive task bodies are made
valid (:func:`valid_body`), so that tasks get created, edited and deleted, not only refused.

What runs per operation: schemathesis' *coverage* phase (deterministic boundary and invalid
values of every parameter and body field) and its *fuzzing* phase (Hypothesis, positive and
negative data, at most ``MAX_EXAMPLES`` examples), derandomized and without an example
database, so a run is the same every time. Then a short *stateful* run over the task
operations (:func:`test_linked_operations_survive_a_stateful_run`) follows the links
schemathesis infers between them (a task created, then read, edited, paused, run and deleted
by the id it was answered).

The checks (:data:`CHECKS`), on every answer:

* ``not_a_server_error``: no 5xx, ever.
* ``status_code_conformance``: the status is one the document lists for the operation.
* ``content_type_conformance``: the media type is the one documented for that status
  (``application/problem+json`` for errors).
* ``response_schema_conformance``: the body matches the documented schema.
* ``response_headers_conformance``: documented headers are present and well-formed.
* ``negative_data_rejection``: a request the schema says is invalid is refused with a 4xx.
* ``ignored_auth``: the same request without the key, or with a wrong one, is refused (401).
* ``missing_required_header``: a request without a header the document requires is refused.
* ``unsupported_method``: a method the path does not have is refused (405);
  ``allow_header_conformance``: an ``Allow`` header lists the documented methods.
* ``use_after_free``, ``ensure_resource_availability`` (stateful run only, where they mean
  something): a deleted task is gone; a created one can be read back.

Off, and why:

* ``positive_data_acceptance`` (valid data must be accepted): the document cannot say every
  rule. A schedule is a free-form object the façade checks (``{"kind": "daily", ...}``), a
  channel URL must be one Apprise knows, and a well-typed id may be no one's (404): such
  requests are rightly refused with a 4xx.
* ``object_level_authorization``: needs a second user's key in schemathesis' auth config;
  tests/integration/test_api.py checks every route with another user's object instead.
* ``max_response_time``: no timed assertion in a test (the machine is shared).

Not fuzzed: ``/v1/events`` (an endless server-sent event stream: a request would not end) and
``GET /v1/doctor`` (live checks over the broker and, with ``canary=true``, a task followed for up
to ``timeout`` seconds; tests/integration/test_doctor_live.py covers it).

The loader is :func:`schemathesis.openapi.from_dict` with ``@schema.parametrize()`` (one test
per operation and backend): ``schemathesis.pytest.from_fixture`` reads ``Function._nodeid``,
which pytest 9 no longer has.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from personal_assistant.api.app import create_app
from personal_assistant.api.reference import spec
from personal_assistant.app.assistant import Assistant
from personal_assistant.database import migrate
from support.api_server import serving
from support.keys import CHANNEL_KEY
from support.services import create_database_from_template, drop_database
from support.stack import run, settings_for

pytestmark = pytest.mark.integration

#: Examples of the fuzzing phase per operation (the coverage phase adds its own).
MAX_EXAMPLES = 30
#: Scenarios of the stateful run, and the most steps in each.
STATEFUL_RUNS = 20
STATEFUL_STEPS = 8
#: Not fuzzed (see above).
LEFT_OUT = ("/v1/events", "/v1/doctor")
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    ignored_auth,
    unsupported_method,
    allow_header_conformance,
]
STATEFUL_CHECKS: list[CheckFunction] = [*CHECKS, use_after_free, ensure_resource_availability]
DAILY = {"kind": "daily", "times": ["09:00"]}

#: The document the app publishes, read at collection (built without a database). The key is
#: sent with every request (:attr:`Fuzz.headers`), so schemathesis does not generate the
#: ``Authorization`` header itself: a case it meant as invalid for lack of a key would not be.
SCHEMA = schemathesis.openapi.from_dict(
    spec(),
    config=schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}}),
).exclude(path=list(LEFT_OUT))

#: Valid schedules. A schedule is a free-form object in the document, and `task_type`,
#: `catch_up` and channel names free strings, so a generated task body is nearly always refused
#: (422): :func:`valid_body` makes half of them valid.
SCHEDULES: list[dict[str, Any]] = [
    DAILY,
    {"kind": "weekly", "weekdays": ["mon", "fri"], "times": ["08:00", "18:30"]},
    {"kind": "interval", "every": "2h"},
    {"kind": "cron", "expression": "*/30 * * * *", "timezone": "Europe/Paris"},
]


def valid_body(case: schemathesis.Case) -> None:
    """Half of the positive bodies that carry a schedule (chosen by the body itself, so the run
    stays deterministic) become a valid task: a plain title and one of :data:`SCHEDULES` (a
    title's rules, at most 200 characters and no control character, are the façade's, not the
    document's). A negative case is left as it is: it must stay invalid."""
    body = case.body
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if not isinstance(body, dict) or not isinstance(body.get("schedule"), dict):
        return
    pick = len(repr(body))
    if pick % 2 == 0:
        schedule = SCHEDULES[(pick // 2) % len(SCHEDULES)]
        case.body = {"title": f"fuzzed {pick}", "schedule": schedule}
        # A generated Idempotency-Key is reused across examples: with a new body, a 422.
        for name in [h for h in case.headers or {} if h.lower() == "idempotency-key"]:
            del case.headers[name]


@dataclass
class Fuzz:
    """The app under test, the caller's key, the seeded objects, and what was sent."""

    base: str
    token: str
    #: A path parameter's name (``task_id``, ``channel``) -> the caller's objects of that kind.
    known: dict[str, list[int | str]]
    #: The caller's own id: no example edits or deletes the caller (then every request after
    #: it would be a 401, and the rest of the fuzz would test nothing but the key check).
    me: int
    #: Operation label -> requests sent; status -> answers.
    calls: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    #: The app's settings, as environment variables.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def aim(self, case: schemathesis.Case) -> None:
        """Point about half of the generated path values at a seeded object (chosen by the
        value itself, so the run stays deterministic). A DELETE aims at the last object of
        its kind only, so that the others live on for the other examples."""
        for name, value in (case.path_parameters or {}).items():
            known = self.known.get(name)
            if not known or isinstance(value, bool) or not isinstance(value, int | str):
                continue
            pick = value if isinstance(value, int) else len(value)
            if pick % 2 == 0:
                pool = known[-1:] if case.method.upper() == "DELETE" else known
                case.path_parameters[name] = pool[(pick // 2) % len(pool)]
            mutates = case.method.upper() in ("PATCH", "DELETE")
            if name == "user_id" and mutates and case.path_parameters[name] == self.me:
                case.path_parameters[name] = known[-1]

    def record(self, case: schemathesis.Case, response: schemathesis.Response) -> None:
        self.calls[case.operation.label] += 1
        self.statuses[response.status_code] += 1


async def _newcomer(env: dict[str, str]) -> str:
    """The key of a new user with nothing yet."""
    async with Assistant(settings_for(env)) as app:
        user = await app.tasks.create_user("Newcomer", timezone="Europe/Paris")
        return (await app.keys.create(user.id, "stateful")).token


async def _seed(env: dict[str, str]) -> tuple[str, int, dict[str, list[int | str]]]:
    """An admin with a key, a second user, tasks of four schedule kinds (one paused), runs."""
    async with Assistant(settings_for(env)) as app:
        admin = await app.tasks.create_user("Fuzz", timezone="Europe/Paris", is_admin=True)
        other = await app.tasks.create_user("Other")
        soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        schedules: list[dict[str, Any]] = [
            DAILY,
            {"kind": "once", "at": soon},
            {"kind": "weekly", "weekdays": ["mon", "fri"], "times": ["08:00"]},
            {"kind": "interval", "every": "2h"},
        ]
        tasks = [
            await app.tasks.create_task(admin.id, f"seeded {i}", schedule=schedule)
            for i, schedule in enumerate(schedules)
        ]
        runs = [await app.tasks.run_now(task.id, admin.id) for task in tasks[:2]]
        await app.tasks.pause_task(tasks[1].id, admin.id)
        token = (await app.keys.create(admin.id, "fuzz")).token
        ids: dict[str, list[int | str]] = {
            "task_id": [t.id for t in tasks],
            "run_id": [r.id for r in runs],
            "user_id": [admin.id, other.id],
        }
        return token, admin.id, ids


#: Objects added through the API when the route exists (an answer other than 201 adds none).
ADDED = {
    "/v1/channels": {"name": "mail", "url": "mailtos://user:secret@mail.example.com"},
    "/v1/calendars": {"name": "work", "url": "https://calendar.example.com/work.ics"},
}


def _listed(client: httpx.Client, document: dict[str, Any]) -> dict[str, list[int | str]]:
    """What the caller's lists show, by the path parameter that names one of them
    (``/v1/channels/{channel}`` -> the names ``GET /v1/channels`` lists; ``{..._id}`` -> ids)."""
    found: dict[str, list[int | str]] = {}
    for path in document["paths"]:
        match = re.fullmatch(r"(/v1/[a-z_-]+)/\{([a-z_]+)\}(/.*)?", path)
        if not match or "get" not in document["paths"].get(match.group(1), {}):
            continue
        collection, name = match.group(1), match.group(2)
        answer = client.get(collection)
        if answer.status_code != 200:
            continue
        body = answer.json()
        items = body.get("items", []) if isinstance(body, dict) else body
        key = "id" if name.endswith("_id") else "name"
        values = [
            o[key] for o in items if isinstance(o, dict) and isinstance(o.get(key), int | str)
        ]
        if values:
            found[name] = values
    return found


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def backend(
    request: pytest.FixtureRequest, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh migrated database on each backend, for the whole file: the ``url`` fixture's,
    made once per backend rather than once per operation (a database, a seed and a server per
    operation cost over a second each, with more than thirty operations on two backends)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'pa.db'}"
        migrate.upgrade(url)
        yield url
        return
    name = f"pa_t_{uuid.uuid4().hex[:12]}"
    yield create_database_from_template(name, pg_template)
    drop_database(name)


@pytest.fixture(scope="module")
def fuzz(backend: str) -> Iterator[Fuzz]:
    # No rate limit: thousands of requests on one key would be mostly 429s.
    env = {"DATABASE_URL": backend, "CHANNEL_KEYS": CHANNEL_KEY, "API_RATE_LIMIT_PER_MINUTE": "0"}
    token, me, ids = run(_seed(env))
    with serving(create_app(settings_for(env))) as base:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
            document = client.get("/openapi.json").json()
            for path, body in ADDED.items():
                if "post" in document["paths"].get(path, {}):
                    client.post(path, json=body)
            known = _listed(client, document) | ids
        yield Fuzz(base, token, known, me, env=env)


@pytest.fixture
def sent(fuzz: Fuzz, request: pytest.FixtureRequest) -> Iterator[None]:
    """The fuzz cannot pass by sending nothing: each operation got more than one request."""
    label: str = request.node.operation_label
    yield
    assert fuzz.calls[label] > 1, (label, fuzz.calls[label])


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # `fuzz` is meant to live across the examples: one server and database per operation.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@pytest.mark.usefixtures("sent")
def test_every_operation_survives_the_fuzz(case: schemathesis.Case, fuzz: Fuzz) -> None:
    fuzz.aim(case)
    valid_body(case)
    response = case.call_and_validate(base_url=fuzz.base, headers=fuzz.headers, checks=CHECKS)
    fuzz.record(case, response)


def test_linked_operations_survive_a_stateful_run(fuzz: Fuzz) -> None:
    """Sequences of calls along the links schemathesis infers (a created task's id into the
    operations on ``/v1/tasks/{task_id}``), with the stateful checks added.

    Each scenario is a new user's, starting with nothing: Hypothesis replays the start of a
    scenario to explore from it, and the same calls must then meet the same answers (with one
    account for all, tasks made by earlier scenarios changed what a listing returns, and
    Hypothesis stopped with "inconsistent data generation")."""
    steps: Counter[str] = Counter()

    class Machine(SCHEMA.include(tag="tasks").as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.headers = {"Authorization": f"Bearer {run(_newcomer(fuzz.env))}"}

        def before_call(self, case: schemathesis.Case) -> None:
            valid_body(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": fuzz.base, "headers": self.headers}

        def validate_response(
            self,
            response: schemathesis.Response,
            case: schemathesis.Case,
            additional_checks: Any = None,
            **kwargs: Any,
        ) -> None:
            steps[f"{case.operation.label} {response.status_code}"] += 1
            case.validate_response(
                response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs, recorder=self.recorder
            )

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=STATEFUL_RUNS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert sum(steps.values()) > STATEFUL_RUNS, steps
    # Calls reached a real task: an operation on a task's path succeeded.
    assert any("{task_id}" in step and step.endswith(("200", "202", "204")) for step in steps)
