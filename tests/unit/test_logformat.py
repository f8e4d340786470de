"""``LOG_FORMAT=json``: one JSON object per log line, the event's fields as its own fields.

The formatter is pure (a record in, a line out); the last tests check that :mod:`logsetup`
uses it for ``core.log`` and stderr, and that the redaction filter still applies.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from personal_assistant import logsetup
from personal_assistant.config import Settings
from personal_assistant.errors import ConfigurationError
from personal_assistant.logformat import JsonFormatter, JsonValue, parse_event

SECRET = "s3cretpw-8f2a"


def _record(msg: str, *args: object, **attrs: Any) -> logging.LogRecord:
    fields: dict[str, Any] = {
        "name": "personal_assistant.runs.processor",
        "levelno": logging.INFO,
        "levelname": "INFO",
        "msg": msg,
        "args": args,
    }
    return logging.makeLogRecord(fields | attrs)


def _line(msg: str, *args: object, **attrs: Any) -> str:
    return JsonFormatter().format(_record(msg, *args, **attrs))


def _doc(msg: str, *args: object, **attrs: Any) -> dict[str, Any]:
    line = _line(msg, *args, **attrs)
    assert "\n" not in line
    doc = json.loads(line)
    assert isinstance(doc, dict)
    return doc


# --- the fields of an event line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (
            "event=run_started run_id=1 task_id=22 attempt=1",
            {"run_id": 1, "task_id": 22, "attempt": 1},
        ),
        (  # agent_retry: %d, %.2f, None, a model name with digits and dashes
            "event=agent_retry status=429 wait=0.50 retry_after=None model=gpt-4o-mini",
            {"status": 429, "wait": 0.5, "retry_after": None, "model": "gpt-4o-mini"},
        ),
        ("event=clock_skew offset_s=-1.250", {"offset_s": -1.25}),
        ("event=runs_purged runs=3 complete=True", {"runs": 3, "complete": True}),
        ("event=x big=12345678901234567890", {"big": 12345678901234567890}),
        # Numbers only when the whole value is one (JSON's grammar: no leading zero, no inf)
        (
            "event=x code=007 mode=0o600 day=2026-11-29 hex=1e3f sum=1e999 half=.5",
            {"code": "007", "mode": "0o600", "day": "2026-11-29", "hex": "1e3f"}
            | {"sum": "1e999", "half": ".5"},
        ),
        ("event=runs_not_claimed run_ids=[1, 2, 3]", {"run_ids": [1, 2, 3]}),
        ("event=runs_not_claimed run_ids=[]", {"run_ids": []}),
        ("event=x names=['a b', 'c'] n=1", {"names": "['a b', 'c']", "n": 1}),
        ("event=x ids=[1e999]", {"ids": "[1e999]"}),
        # %r of a string: Python's quotes and escapes; a key=value inside stays inside
        (
            "event=run_deferred run_id=5 reason='rate limit x=1'",
            {"run_id": 5, "reason": "rate limit x=1"},
        ),
        (r"event=x error='it\'s \\ here\n' n=2", {"error": "it's \\ here\n", "n": 2}),
        (
            "event=x error=\"no channel named 'email'\" n=3",
            {"error": "no channel named 'email'", "n": 3},
        ),
        ("event=x reason='5'", {"reason": "5"}),  # quoted: a string
        # json.dumps (inbound.py): JSON escapes, then a fingerprint's own pairs
        (
            r'event=broker_message_refused queue=runs reason="caf\u00e9 \"q\" \ud83d\ude00" '
            "bytes=12 sha256=ab12",
            {"queue": "runs", "reason": 'café "q" \U0001f600', "bytes": 12, "sha256": "ab12"},
        ),
        # Free text runs to the next key=, or to the end
        (
            "event=loop_wedged worker_id=w1 silent_s=61.0 detail=leases no longer renewed",
            {"worker_id": "w1", "silent_s": 61.0, "detail": "leases no longer renewed"},
        ),
        (
            "event=clock_skew offset_s=1.500 detail=this host's clock differs from the "
            "database's; times are taken from the database",
            {
                "offset_s": 1.5,
                "detail": "this host's clock differs from the database's; times are taken "
                "from the database",
            },
        ),
        ("event=x user=Zoë city=Kraków", {"user": "Zoë", "city": "Kraków"}),
        # Malformed tails
        ("event=x run_id=", {"run_id": ""}),
        ("event=x a= b=2", {"a": "", "b": 2}),
        ("event=x a=1 =2", {"a": "1 =2"}),
        ("event=x a='unterminated b=2", {"a": "'unterminated", "b": 2}),
        ("event=x a='closed'tail", {"a": "'closed'tail"}),
        ("event=x a=[1, 2 b=3", {"a": "[1, 2", "b": 3}),
        (r"event=x a='\ud800'", {"a": r"\ud800"}),  # a lone surrogate cannot be written
        ("event=x stray words a=1", {"a": 1}),  # no key: only in `message`
        ("event=x", {}),
        ("event=x detail=line one\nline two", {"detail": "line one\nline two"}),
    ],
)
def test_an_event_lines_fields(message: str, fields: dict[str, JsonValue]) -> None:
    doc = _doc(message)
    assert doc["event"] == message.split()[0].removeprefix("event=")
    assert doc["message"] == message
    assert {k: v for k, v in doc.items() if k not in _BASE} == fields


_BASE = {"ts", "level", "logger", "pid", "message", "event"}


@pytest.mark.parametrize(
    "message",
    [
        "Task personal_assistant.x[1] succeeded in 0.01s: {'a': 1}",
        "event= run_id=1",
        " event=x run_id=1",
        "xevent=x run_id=1",
        "event=x,y run_id=1",
        "",
    ],
)
def test_other_lines_have_only_a_message(message: str) -> None:
    assert parse_event(message) is None
    assert set(_doc(message)) == {"ts", "level", "logger", "pid", "message"}


def test_the_record_fields() -> None:
    doc = _doc(
        "event=run_succeeded run_id=%s agent=%s",
        7,
        "offline",
        created=1_700_000_000.123,
        msecs=123.0,
        process=4242,
        levelname="WARNING",
    )
    assert list(doc)[:6] == ["ts", "level", "logger", "pid", "message", "event"]
    assert doc["ts"] == "2023-11-14T22:13:20.123Z"
    assert doc["level"] == "WARNING"
    assert doc["logger"] == "personal_assistant.runs.processor"
    assert doc["pid"] == 4242
    assert doc["message"] == "event=run_succeeded run_id=7 agent=offline"
    assert (doc["run_id"], doc["agent"]) == (7, "offline")


def test_a_field_named_like_a_reserved_key_is_prefixed_never_overwrites() -> None:
    doc = _doc(
        "event=x ts=now level=high logger=me pid=1 message=hi event=y exc_info=no "
        "stack_info=no field_ts=mine a=1 a=2"
    )
    assert doc["level"] == "INFO" and doc["event"] == "x" and doc["pid"] != 1
    assert doc["ts"].endswith("Z") and doc["logger"] == "personal_assistant.runs.processor"
    assert "exc_info" not in doc and "stack_info" not in doc
    assert {k: v for k, v in doc.items() if k.startswith("field_")} == {
        "field_ts": "now",
        "field_level": "high",
        "field_logger": "me",
        "field_pid": 1,
        "field_message": "hi",
        "field_event": "y",
        "field_exc_info": "no",
        "field_stack_info": "no",
        "field_field_ts": "mine",
        "field_a": 2,
    }
    assert doc["a"] == 1


def test_an_exception_is_its_formatted_traceback() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = _record("event=agent_crashed run_id=%s", 3, exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["run_id"] == 3
    assert doc["exc_info"].startswith("Traceback (most recent call last):")
    assert doc["exc_info"].endswith("ValueError: bad\nvalue")


def test_the_stack_is_kept() -> None:
    doc = _doc("event=x", stack_info="Stack (most recent call last):\n  File x")
    assert doc["stack_info"] == "Stack (most recent call last):\n  File x"


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x1e"])
def test_one_object_per_line_whatever_the_message_holds(brk: str) -> None:
    message = f"event=x detail=one{brk}two"
    line = _line(message)
    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == message


def test_non_ascii_stays_readable() -> None:
    line = _line("event=x user=%s", "Zoë 日本")
    assert "Zoë 日本" in line and "\\u" not in line


# --- the setting ---------------------------------------------------------------------------------


def test_log_format_is_text_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert Settings.from_env().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert Settings.from_env().log_format == "json"


def test_an_unknown_log_format_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigurationError, match=r"LOG_FORMAT: Input should be 'text' or 'json'"):
        Settings.from_env()


# --- logsetup ------------------------------------------------------------------------------------


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[logging.Logger]:
    """The root logger, its handlers and levels restored after the test."""
    monkeypatch.setenv("PA_LOG_FILE", str(tmp_path / "unused.log"))  # configure sets it
    logger = logging.getLogger()
    saved, level = list(logger.handlers), logger.level
    noisy = ("sqlalchemy.engine", "httpx", "kombu", "amqp")
    quieted = {name: logging.getLogger(name).level for name in noisy}
    for handler in saved:
        logger.removeHandler(handler)
    try:
        yield logger
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        for handler in saved:
            logger.addHandler(handler)
        logger.setLevel(level)
        for name, old in quieted.items():
            logging.getLogger(name).setLevel(old)


def _settings(tmp_path: Path, **env: str) -> Settings:
    env |= {"PA_HOME": str(tmp_path), "LOG_DIR": str(tmp_path / "logs")}
    return Settings(**env)  # type: ignore[arg-type]  # aliases are the init names


def _log_with_secrets(logger: logging.Logger) -> None:
    logger.info("event=feed_fetched url=%s n=%d", f"postgresql://pa:{SECRET}@db:5432/pa", 2)
    try:
        raise ConnectionError(f"cannot reach redis://:{SECRET}@cache:6379/0")
    except ConnectionError:
        logger.exception("event=broker_down url=%s", f"amqp://guest:{SECRET}@mq//")


def test_configure_json_writes_redacted_json_lines(
    root: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = logsetup.configure(_settings(tmp_path, LOG_FORMAT="json"))
    assert root.handlers and all(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    _log_with_secrets(logging.getLogger("personal_assistant.test_logformat"))
    for handler in root.handlers:
        handler.flush()
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "logs" / "core.log"
    assert SECRET not in text and SECRET not in capsys.readouterr().err
    fetched, down = (json.loads(line) for line in text.splitlines())
    assert fetched["event"] == "feed_fetched" and fetched["n"] == 2
    assert fetched["url"] == "postgresql://pa:****@db:5432/pa"
    assert down["url"] == "amqp://guest:****@mq//" and down["level"] == "ERROR"
    assert "ConnectionError: cannot reach redis://:****@cache:6379/0" in down["exc_info"]


def test_add_core_log_json_is_redacted_too(root: logging.Logger, tmp_path: Path) -> None:
    logger = logging.getLogger("personal_assistant.test_logformat.celery")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        path = logsetup.add_core_log(_settings(tmp_path, LOG_FORMAT="json"), logger)
        _log_with_secrets(logger)
        for handler in logger.handlers:
            handler.flush()
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    text = path.read_text(encoding="utf-8")
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [doc["event"] for doc in lines] == ["feed_fetched", "broker_down"]
    assert "redis://:****@cache" in lines[1]["exc_info"]


def test_configure_text_is_unchanged(root: logging.Logger, tmp_path: Path) -> None:
    path = logsetup.configure(_settings(tmp_path), stderr=False)
    logging.getLogger("personal_assistant.x").warning("event=x run_id=%s", 1)
    assert not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
    for handler in root.handlers:
        handler.flush()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING pid=\d+ personal_assistant\.x "
        r"event=x run_id=1\n",
        path.read_text(encoding="utf-8"),
    )


def test_a_long_run_of_spaces_is_one_value() -> None:
    # The key pattern takes one space at a time: with ``\s+`` before a key, this line took
    # about 15 s (quadratic backtracking); now about 1 ms. Timed by hand, not asserted here.
    message = "event=x a=" + " " * 50_000 + "end"  # no key after the spaces
    assert parse_event(message) == ("x", [("a", "end")])
