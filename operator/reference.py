"""The CRD field reference (`docs/crd-reference.md`), generated from the CRD's own schema.

Reading the structural schema rather than the models keeps the page exactly what `kubectl explain`
and the apiserver see: names, types, defaults, bounds, descriptions and CEL rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ttsfleet.operator import api, crd

_BOUND_KEYS = (
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "items ≥ {}"),
    ("maxItems", "items ≤ {}"),
    ("maxProperties", "entries ≤ {}"),
    ("pattern", "matches `{}`"),
)


def render_reference() -> str:
    """The whole reference page as Markdown."""
    schema = crd.open_api_schema()
    lines = [
        "<!-- Generated: python -m ttsfleet.operator.reference > docs/crd-reference.md -->",
        f"# {api.KIND} reference (`{api.API_VERSION}`)",
        "",
        f"Namespaced; plural `{api.PLURAL}`, short name `{', '.join(api.SHORT_NAMES)}`. "
        "Subresources: `/status`, `/scale` (`.spec.replicas`, `.status.replicas`, `.status.selector`).",
        "Fields marked *required* must be set; others take the default shown (— means unset).",
        "",
    ]
    lines += _rules_block(schema)
    for path, node in _objects(schema["properties"]["spec"], "spec"):
        lines += _section(path, node)
    for path, node in _objects(schema["properties"]["status"], "status"):
        lines += _section(path, node)
    return "\n".join(lines).rstrip() + "\n"


def _objects(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    # Depth-first, properties in name order: sections appear in the order a reader meets them.
    if "properties" in node:
        yield path, node
        for name in sorted(node["properties"]):
            yield from _objects(node["properties"][name], f"{path}.{name}")
    elif "items" in node:
        yield from _objects(node["items"], f"{path}[]")


def _section(path: str, node: dict[str, Any]) -> list[str]:
    lines = [f"## `{path}`", "", node.get("description", ""), ""]
    lines += _rules_block(node)
    lines += ["| Field | Type | Default | Bounds | Description |", "|---|---|---|---|---|"]
    required = set(node.get("required", ()))
    for name in sorted(node["properties"]):
        child = node["properties"][name]
        default = "*required*" if name in required else _default(child)
        description = child.get("description", "").replace("|", "\\|")
        lines.append(f"| `{name}` | {_type(child)} | {default} | {_bounds(child)} | {description} |")
    return [*lines, ""]


def _rules_block(node: dict[str, Any]) -> list[str]:
    rules = node.get("x-kubernetes-validations", [])
    if not rules:
        return []
    lines = ["Rules (CEL, checked by the apiserver and again by the operator):", ""]
    lines += [f"- {rule['message']} — `{rule['rule']}`" for rule in rules]
    return [*lines, ""]


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "object")
    if "enum" in node:
        return " \\| ".join(f"`{value}`" for value in node["enum"])
    if kind == "array":
        return f"list of {_type(node['items'])}"
    if kind == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'])}"
    if kind == "object" and node.get("x-kubernetes-preserve-unknown-fields"):
        return "object (free-form)"
    if "format" in node:
        return f"{kind} ({node['format']})"
    return str(kind)


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return "—"
    return f"`{json.dumps(node['default'], ensure_ascii=False)}`"


def _bounds(node: dict[str, Any]) -> str:
    parts = [template.format(node[key]) for key, template in _BOUND_KEYS if key in node]
    return ", ".join(parts).replace("|", "\\|")


if __name__ == "__main__":  # python -m ttsfleet.operator.reference > docs/crd-reference.md
    print(render_reference(), end="")
