"""Server-side printing: the `Table` kubectl asks for, with a CRD's additionalPrinterColumns.

`kubectl get` sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io, …`; an API server that answers
with a `meta.k8s.io/v1` Table decides the columns. For a custom resource they are Name, then the CRD's
printer columns (each a JSONPath into the object, `date` columns shown as ages), or Name and Age when the
CRD declares none; built-in resources get Name and Age here (a real API server knows richer columns for
them). Rows carry the object's metadata, as `includeObject=Metadata` (kubectl's default) asks.

Printer columns use a small JSONPath subset, which is all CRDs use in practice: `.field`, `[index]`,
`[*]` and filters `[?(@.key=="value")]`. Pure: the clock is a parameter.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ttsfleet.devcluster.apiserver.resources import ResourceSpec

Body = dict[str, Any]

NAME_COLUMN: Body = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
AGE_COLUMN: Body = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "priority": 0}
_STEP = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-]+)
      | \[(?P<index>-?\d+|\*)\]
      | \[\?\(@\.(?P<key>[A-Za-z0-9_\-.]+)\s*==\s*(?P<quote>["'])(?P<value>.*?)(?P=quote)\)\]""",
    re.VERBOSE,
)


def wants_table(accept: str) -> bool:
    """Whether the request's Accept header asks for a meta.k8s.io/v1 Table."""
    return any(
        "as=Table" in part and "g=meta.k8s.io" in part and "v=v1" in part.replace(" ", "").split(";")
        for part in accept.split(",")
    )


def _steps(path: str) -> list[re.Match[str]]:
    steps, position = [], 0
    path = path.strip().removeprefix("{").removesuffix("}").strip()
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath at {path[position:]!r} in {path!r}")
        steps.append(match)
        position = match.end()
    return steps


def _dig(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def evaluate(obj: Any, path: str) -> list[Any]:
    """Every value `path` selects in `obj` (an empty list when it selects nothing)."""
    nodes = [obj]
    for step in _steps(path):
        found: list[Any] = []
        for node in nodes:
            if step["field"] is not None:
                if isinstance(node, Mapping) and step["field"] in node:
                    found.append(node[step["field"]])
            elif step["index"] is not None:
                if isinstance(node, list):
                    if step["index"] == "*":
                        found.extend(node)
                    elif -len(node) <= int(step["index"]) < len(node):
                        found.append(node[int(step["index"])])
            elif isinstance(node, list):
                found.extend(item for item in node if str(_dig(item, step["key"])) == step["value"])
        nodes = found
    return nodes


def human_age(timestamp: Any, now: datetime.datetime) -> str:
    """`kubectl`'s age spelling: 42s, 5m, 3h, 2d4h, 6d, 400d; `<unknown>` when not a timestamp."""
    try:
        then = datetime.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def _cell(column: Mapping[str, Any], obj: Body, now: datetime.datetime) -> Any:
    values = evaluate(obj, str(column.get("jsonPath", "")))
    if not values:
        return None
    if column.get("type") == "date":
        return human_age(values[0], now)
    if len(values) > 1 or isinstance(values[0], dict | list):
        return ",".join(v if isinstance(v, str) else json.dumps(v) for v in values)
    return values[0]


def _partial_metadata(obj: Body) -> Body:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(spec: ResourceSpec, objects: Iterable[Body], resource_version: str, now: datetime.datetime) -> Body:
    """The Table of `objects` (one object for a GET by name, a list's items otherwise)."""
    columns: Sequence[Mapping[str, Any]] = spec.printer_columns or (AGE_COLUMN,)
    definitions = [NAME_COLUMN] + [
        {
            "name": column["name"],
            "type": column.get("type", "string"),
            "format": column.get("format", ""),
            "description": column.get("description", ""),
            "priority": column.get("priority", 0),
        }
        for column in columns
    ]
    rows = [
        {
            "cells": [obj.get("metadata", {}).get("name", "")] + [_cell(c, obj, now) for c in columns],
            "object": _partial_metadata(obj),
        }
        for obj in objects
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
