"""Deepgram's API specs (asyncapi.yml, openapi.yml) as data for tests: the `/v1/speak` query parameters,
their defaults and enums, so conformance walks what Deepgram documents instead of a hand-made list.

The specs live in `shared/reference/deepgram-api-specs/` beside the repository (or a parent of it);
`scripts/voices_from_spec.py` finds them the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import yaml

from scripts.voices_from_spec import find_spec


@dataclass(frozen=True)
class SpecParameter:
    """One query parameter: its JSON type, default and the values the spec enumerates (as strings)."""

    name: str
    type: str  # string | number | boolean | any
    default: str | None
    values: tuple[str, ...]


@functools.cache
def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(find_spec(name).read_text())
    return loaded


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _parameter(document: dict[str, Any], name: str, raw: dict[str, Any]) -> SpecParameter:
    schema = _resolve(document, raw)
    values: list[str] = []
    kinds: set[str] = set()
    for option in schema.get("oneOf", [schema]):
        option = _resolve(document, option)
        kinds.add(str(option.get("type", "any")))
        values.extend(_as_text(v) for v in option.get("enum", []) if _as_text(v) not in values)
    kind = kinds.pop() if len(kinds) == 1 else "string"
    if kind == "boolean" or (kind == "any" and name == "mip_opt_out"):
        values, kind = ["true", "false"], "boolean"
    default = schema.get("default", raw.get("default"))
    return SpecParameter(name, kind, None if default is None else _as_text(default), tuple(values))


def rest_speak_parameters() -> dict[str, SpecParameter]:
    """openapi.yml, `POST /v1/speak`: every query parameter."""
    document = _load("openapi.yml")
    operation = document["paths"]["/v1/speak"]["post"]
    return {
        p["name"]: _parameter(document, p["name"], p["schema"])
        for p in operation["parameters"]
        if p["in"] == "query"
    }


def websocket_speak_parameters() -> dict[str, SpecParameter]:
    """asyncapi.yml, channel `/v1/speak`: every query parameter."""
    document = _load("asyncapi.yml")
    query = document["channels"]["/v1/speak"]["bindings"]["ws"]["query"]["properties"]
    return {name: _parameter(document, name, raw) for name, raw in query.items()}


def spec_voices() -> tuple[str, ...]:
    """The voices Deepgram documents (the REST model enum; the WebSocket's model has no enum)."""
    return rest_speak_parameters()["model"].values
