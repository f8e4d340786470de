"""``safe_text``: text from outside made safe to store in PostgreSQL, log and print."""

from __future__ import annotations

import pytest

from personal_assistant.safe_text import ERROR_MAX, safe_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("plain text", "plain text", id="plain"),
        pytest.param("BeGIN:\x00", "BeGIN:", id="nul"),
        pytest.param("a\x00b", "a b", id="nul-inside"),
        pytest.param("line one\r\nline two\ttab", "line one line two tab", id="breaks-and-tabs"),
        pytest.param("\x1b[2J\x1b[31mred", "[2J [31mred", id="escape-sequences"),
        pytest.param("log\u2028forged=1", "log forged=1", id="line-separator"),
        pytest.param("evil\u202egnp.exe", "evil gnp.exe", id="bidi-override"),
        pytest.param("lone \udc80 surrogate", "lone surrogate", id="surrogate"),
        pytest.param("  spaced   out  ", "spaced out", id="whitespace-runs"),
        pytest.param("Zürich, 東京 ✓", "Zürich, 東京 ✓", id="unicode-kept"),
        pytest.param(ValueError("not \x00 a str"), "not a str", id="any-object"),
    ],
)
def test_safe_text(value: object, expected: str) -> None:
    assert safe_text(value) == expected


def test_a_long_text_is_bounded_and_says_so() -> None:
    cut = safe_text("x" * 10_000)
    assert len(cut) == ERROR_MAX and cut.endswith("…")
    assert safe_text("abcdef", 4) == "abc…"
    assert safe_text("abcd", 4) == "abcd"


def test_the_result_can_be_encoded_and_stored() -> None:
    text = safe_text("".join(chr(c) for c in range(0x20)) + "\udcff\ud800ok")
    assert text == "ok"
    text.encode("utf-8")  # no lone surrogate left
