"""The pure parts of the API's conditional requests and event stream: ``If-Match`` /
``If-None-Match`` comparison, the event cursor, one event on the wire."""

from __future__ import annotations

import pytest

from personal_assistant.api.events import encode
from personal_assistant.app.events import Cursor
from personal_assistant.app.versions import matches, none_match

TAG = '"abc"'


@pytest.mark.parametrize(
    ("header", "if_match", "if_none_match"),
    [
        ('"abc"', True, True),
        ('"old", "abc"', True, True),
        ("*", True, True),
        ('W/"abc"', False, True),  # If-Match compares strongly, If-None-Match weakly
        ('"old"', False, False),
        ("abc", False, False),  # unquoted: not the tag
        ("", False, False),
    ],
)
def test_entity_tags_compare_as_rfc_9110_says(
    header: str, if_match: bool, if_none_match: bool
) -> None:
    assert matches(header, TAG) is if_match
    assert none_match(header, TAG) is if_none_match


@pytest.mark.parametrize(
    ("text", "cursor"),
    [
        ("12.7", Cursor(12, 7)),
        (" 0.0 ", Cursor(0, 0)),
        (None, None),
        ("", None),
        ("12", None),
        ("-1.2", None),
        ("1.2.3", None),
        ("9" * 20 + ".1", None),
        ("1." + "9" * 19, None),  # beyond 64 bits
        (f"{2**63 - 1}.1", Cursor(2**63 - 1, 1)),
    ],
)
def test_a_cursor_round_trips_and_anything_else_is_none(
    text: str | None, cursor: Cursor | None
) -> None:
    assert Cursor.parse(text) == cursor
    if cursor is not None:
        assert Cursor.parse(str(cursor)) == cursor


def test_an_event_is_one_data_line_whatever_the_text() -> None:
    wire = encode("run", {"result": "two\nlines", "é": 1}, "3.4").decode()
    assert wire == 'event: run\nid: 3.4\ndata: {"result":"two\\nlines","é":1}\n\n'
