"""The house's size rules (docs/explanation-architecture.md): small modules, simple functions.

The layering is import-linter's (``make lint``); these are the two rules it does not check.
"""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_rank, cc_visit

SRC = Path(__file__).resolve().parents[2] / "src" / "personal_assistant"
MAX_LINES = 500
#: radon's rank C ends at a cyclomatic complexity of 20.
WORST_RANK = "C"


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_tree_is_there() -> None:
    assert len(_modules()) > 100


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_function_is_more_complex_than_rank_c() -> None:
    worse = [
        f"{p.relative_to(SRC)}:{block.lineno} {block.name} {cc_rank(block.complexity)} "
        f"({block.complexity})"
        for p in _modules()
        for block in cc_visit(p.read_text(encoding="utf-8"))
        if cc_rank(block.complexity) > WORST_RANK
    ]
    assert worse == []
