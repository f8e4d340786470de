"""``make docs``: write the routing table into ``docs/reference-queues.md``.

``python -m personal_assistant.workers.routing_docs [PAGE]`` replaces what lies between the
page's ``routing-table`` markers with :func:`~personal_assistant.workers.routing.markdown_table`;
a unit test fails when the page and the table differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from personal_assistant.workers.routing import markdown_table

BEGIN = "<!-- routing-table:begin (make docs writes this block) -->"
END = "<!-- routing-table:end -->"
PAGE = Path("docs/reference-queues.md")


def block(page: str) -> str:
    """The derived part of ``page``, without its markers."""
    return page[page.index(BEGIN) + len(BEGIN) : page.index(END)].strip()


def render(page: str) -> str:
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return f"{page[:start]}\n{markdown_table()}\n{page[end:]}"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else PAGE
    path.write_text(render(path.read_text()))
    print(f"wrote the routing table to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
