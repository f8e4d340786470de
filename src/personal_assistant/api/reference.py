"""``make docs``: the API reference, ``docs/reference-api.md``, written from the OpenAPI spec.

``python -m personal_assistant.api.reference [PAGE]`` renders the app's OpenAPI document as
Markdown (:func:`markdown`, pure): every operation with its parameters, body and answers, then
every schema with its fields. A test fails when the page and the spec differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PAGE = Path("docs/reference-api.md")
_METHODS = ("get", "post", "put", "patch", "delete")

_HEAD = """# Reference: the HTTP API

Written by `make docs` from the OpenAPI document the server publishes (`GET /openapi.json`,
OpenAPI {openapi}; browsable at `/docs` while `pa serve` runs). Do not edit by hand.

Every operation but `GET /healthz` needs an API key (`pa user key create NAME`) sent as
`Authorization: Bearer KEY`, and acts on the caller's objects only: another user's id answers
404, as an unknown one does. Every error is an RFC 9457 problem (`application/problem+json`:
`type`, `title`, `status`, `detail`, and `field` when one field is at fault). How to drive it
with `curl`: [howto-api.md](howto-api.md).
"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    kind = str(schema.get("type", "any"))
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return "object"
    return kind


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    text = op.get("description") or op.get("summary") or ""
    if text:
        lines += [_cell(text), ""]
    if not op.get("security"):
        lines += ["No key needed.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | constraints |", "|---|---|---|---|---|"]
        for p in params:
            schema = p.get("schema", {})
            bounds = ", ".join(
                f"{k} {schema[k]}"
                for k in ("minimum", "maximum", "maxLength", "pattern", "default")
                if k in schema
            )
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type(schema)} | "
                f"{'yes' if p.get('required') else 'no'} | {_cell(bounds)} |"
            )
        lines.append("")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        lines += [f"Body: {_type(body.get('schema', {}))}.", ""]
    answers, errors = [], []
    for status, answer in sorted(op.get("responses", {}).items()):
        content = answer.get("content", {})
        media = next(iter(content), None)
        schema = content[media].get("schema") if media else None
        if str(status).startswith(("4", "5")):
            errors.append(f"`{status}`")
        else:
            answers.append(f"`{status}` {_type(schema) if schema else 'no body'}")
    lines += ["Answers: " + "; ".join(answers) + "."]
    if errors:
        lines += [f"Errors: {', '.join(errors)}, each a [Problem](#problem)."]
    lines.append("")
    return lines


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]), ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, spec in schema.get("properties", {}).items():
        lines.append(
            f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
            f"{_cell(spec.get('description', ''))} |"
        )
    return [*lines, ""]


def markdown(spec: dict[str, Any]) -> str:
    lines = [_HEAD.format(openapi=spec["openapi"]), "## Operations", ""]
    for path, item in spec["paths"].items():
        for method in _METHODS:
            if method in item:
                lines += _operation(path, method, item[method])
    lines += ["## Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def spec() -> dict[str, Any]:
    """The OpenAPI document of the app (built without a database: no request is served)."""
    from personal_assistant.api.app import create_app
    from personal_assistant.config import Settings

    document: dict[str, Any] = create_app(Settings(DATABASE_URL="sqlite://")).openapi()
    return document


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else PAGE
    path.write_text(markdown(spec()))
    print(f"wrote the API reference to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
