"""Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a strategic-merge subset.

Strategic merge here merges lists of objects by a merge key (`name`, else `containerPort`, `port`,
`mountPath`, `type`, `ip` when every element on both sides has it), honours `$patch: delete` elements,
`$setElementOrder/…` and `$retainKeys`-free patches; other `$` directives are dropped and lists of
scalars are replaced. That covers what `kubectl apply` sends for the fleet's manifests. Pure functions.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE_KEYS: tuple[str, ...] = ("name", "containerPort", "port", "mountPath", "type", "ip")


class PatchError(Exception):
    """The patch cannot apply (bad path or op): 422 for the client."""


class PatchTestFailed(PatchError):
    """A JSON-patch `test` op did not hold (kopf uses it for optimistic concurrency)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid list index: {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_insert):
        raise PatchError(f"list index out of range: {index}")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise PatchError(f"path not found: /{'/'.join(tokens)}")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent[tokens[-1]]
    if isinstance(parent, list):
        return parent[_index(parent, tokens[-1], for_insert=False)]
    raise PatchError(f"path not found: {path}")


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, tokens[-1], for_insert=False))
    raise PatchError(f"path not found: {path}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[tokens[-1]] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, tokens[-1], for_insert=True), value)
    else:
        raise PatchError(f"path not found: {path}")
    return doc


def _replace(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    _get(doc, path)  # replace requires the target to exist
    parent = _parent(doc, tokens)
    if isinstance(parent, list):
        parent[_index(parent, tokens[-1], for_insert=False)] = value
    else:
        parent[tokens[-1]] = value
    return doc


def json_patch(target: Any, operations: list[Any]) -> Any:
    """RFC 6902 on a copy of `target`: add, remove, replace, move, copy, test."""
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"malformed JSON-patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op == "test":
            if _get(doc, path) != operation.get("value"):
                raise PatchTestFailed(f"testing value {path} failed")
        elif op == "add":
            doc = _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            doc = _replace(doc, path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            value = copy.deepcopy(_get(doc, operation["from"]))
            if op == "move":
                _remove(doc, operation["from"])
            doc = _add(doc, path, value)
        else:
            raise PatchError(f"unknown JSON-patch op: {op!r}")
    return doc


def _merge_key(original: list[Any], patch: list[Any]) -> str | None:
    items = [
        item
        for item in original + patch
        if not (isinstance(item, dict) and "$patch" in item and len(item) == 1)
    ]
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in MERGE_KEYS:
        if all(key in item for item in items):
            return key
    return None


def _merge_list(original: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    key = _merge_key(original, patch)
    if key is None:
        return [_strip_directives(item) for item in patch]
    merged = {item[key]: item for item in original}
    for item in patch:
        if item.get("$patch") == "delete":
            merged.pop(item.get(key), None)
        else:
            merged[item[key]] = strategic_merge_patch(merged.get(item[key], {}), item)
    if order:
        ranked = [entry.get(key) for entry in order if isinstance(entry, dict)]
        return sorted(
            merged.values(), key=lambda e: ranked.index(e[key]) if e[key] in ranked else len(ranked)
        )
    return list(merged.values())


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return value


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """The strategic-merge subset described in the module docstring."""
    if not isinstance(patch, dict):
        return _strip_directives(copy.deepcopy(patch))
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            order = patch.get(f"$setElementOrder/{key}")
            result[key] = _merge_list(result[key], copy.deepcopy(value), order)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result
