"""docs/reference-api.md is the app's OpenAPI document as ``make docs`` writes it."""

from __future__ import annotations

from pathlib import Path

from personal_assistant.api import reference


def test_the_api_reference_is_current() -> None:
    page = Path(__file__).parents[2] / reference.PAGE
    assert page.read_text() == reference.markdown(reference.spec()), "run `make docs`"


def test_the_reference_lists_every_operation_and_the_problem_shape() -> None:
    spec = reference.spec()
    text = reference.markdown(spec)
    for path, item in spec["paths"].items():
        for method in item:
            assert f"### `{method.upper()} {path}`" in text
    assert "### Problem" in text and "application/problem+json" in text
    assert "HTTPValidationError" not in text
