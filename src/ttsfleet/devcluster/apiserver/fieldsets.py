"""Server-side apply's field ownership: who set which field, what an apply removes, what conflicts.

Every write records, in `metadata.managedFields` (FieldsV1, as the apiserver writes it), the fields its
field manager set: an apply owns every field of its configuration; any other write owns the fields it
changed, taking them from their previous owners. An apply then removes the fields its manager applied
last time and left out now, unless another manager owns them too — so a key dropped from an
annotation map goes away while fields other controllers wrote survive — and refuses (409) to change
a field another manager owns unless forced. Lists of objects are keyed by the first of
`patching.MERGE_KEYS` all their items have (containers by name…); other lists are atomic. Only the
object's body outside status is tracked, plus metadata labels, annotations and ownerReferences.
Pure functions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ttsfleet.devcluster.apiserver import patching
from ttsfleet.devcluster.apiserver.storage import Body

FieldPath = tuple[str, ...]
ITEM = "."  # the path element naming a keyed list item itself
_UNTRACKED = ("apiVersion", "kind", "metadata", "status")
_TRACKED_METADATA = ("labels", "annotations", "ownerReferences")
_MISSING = object()


class ApplyConflict(Exception):
    """An apply would change fields other managers own (and was not forced)."""

    def __init__(self, conflicts: list[tuple[str, FieldPath]]) -> None:
        self.conflicts = conflicts
        listed = "; ".join(f'conflict with "{manager}": {render(path)}' for manager, path in conflicts)
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): {listed}")


def render(path: FieldPath) -> str:
    """A path as the apiserver prints it in conflicts: `.spec.replicas`, `.spec.containers[name="x"]`."""
    text = ""
    for part in path:
        if part.startswith("f:"):
            text += f".{part[2:]}"
        elif part.startswith("k:"):
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(part[2:]).items()) + "]"
    return text or "."


def _list_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    return next((key for key in patching.MERGE_KEYS if all(key in item for item in items)), None)


def _item_part(key: str, item: Mapping[str, Any]) -> str:
    return "k:" + json.dumps({key: item[key]}, separators=(",", ":"), sort_keys=True)


def _leaves(value: Any, prefix: FieldPath) -> set[FieldPath]:
    if isinstance(value, dict) and value:
        found: set[FieldPath] = set()
        for name, child in value.items():
            found |= _leaves(child, (*prefix, f"f:{name}"))
        return found
    if isinstance(value, list) and (key := _list_key(value)) is not None:
        found = set()
        for item in value:
            item_path = (*prefix, _item_part(key, item))
            found |= {(*item_path, ITEM)} | _leaves(item, item_path)
        return found
    return {prefix}


def paths_of(body: Mapping[str, Any] | None) -> set[FieldPath]:
    """Every tracked leaf field of an object (keyed list items also as `…, k:{…}, .`)."""
    if not body:
        return set()
    tracked = {key: value for key, value in body.items() if key not in _UNTRACKED}
    metadata = body.get("metadata") or {}
    found = _leaves(tracked, ()) if tracked else set()
    for key in _TRACKED_METADATA:
        if key in metadata:
            found |= _leaves(metadata[key], ("f:metadata", f"f:{key}"))
    return found


def _child(node: Any, part: str) -> Any:
    if part.startswith("f:") and isinstance(node, dict):
        return node.get(part[2:], _MISSING)
    if part.startswith("k:") and isinstance(node, list):
        wanted = json.loads(part[2:])
        return next(
            (i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())),
            _MISSING,
        )
    return _MISSING


def value_at(body: Any, path: FieldPath) -> Any:
    """The value at a path (a keyed item for `…, k:{…}, .`), or a sentinel when absent."""
    node = body
    for part in path:
        if part == ITEM:
            return node
        node = _child(node, part)
        if node is _MISSING:
            return _MISSING
    return node


def remove(body: Body, path: FieldPath) -> None:
    """Delete the field (or keyed item) at `path` in place, and containers it leaves empty."""
    if path and path[-1] == ITEM:
        path = path[:-1]
    trail: list[Any] = [body]
    for part in path[:-1]:
        node = _child(trail[-1], part)
        if node is _MISSING or not isinstance(node, dict | list):
            return
        trail.append(node)
    for depth in range(len(path) - 1, -1, -1):
        container, part = trail[depth], path[depth]
        if part.startswith("f:") and isinstance(container, dict):
            container.pop(part[2:], None)
        elif part.startswith("k:") and isinstance(container, list):
            item = _child(container, part)
            if item is not _MISSING:
                container.remove(item)
        if depth == 0 or container:
            return  # stop pruning at the first container that still holds something


def _differs(before: Any, after: Any, path: FieldPath) -> bool:
    # A keyed item's own path changes when the item comes or goes, not when one of its fields does.
    was, now = value_at(before, path), value_at(after, path)
    if path and path[-1] == ITEM:
        return (was is _MISSING) != (now is _MISSING)
    return bool(was != now)


Managed = dict[tuple[str, str], set[FieldPath]]


def _to_fields(paths: Iterable[FieldPath]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def _from_fields(tree: Mapping[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    found: set[FieldPath] = set()
    for part, child in tree.items():
        path = (*prefix, part)
        found |= _from_fields(child, path) if child else {path}
    return found


def parse(body: Mapping[str, Any] | None) -> Managed:
    """The managers' field sets recorded on an object."""
    managed: Managed = {}
    for entry in ((body or {}).get("metadata") or {}).get("managedFields") or ():
        key = (str(entry.get("manager") or ""), str(entry.get("operation") or "Update"))
        managed.setdefault(key, set()).update(_from_fields(entry.get("fieldsV1") or {}))
    return managed


def serialize(managed: Managed, api_version: str, now: str) -> list[dict[str, Any]]:
    """`metadata.managedFields` for the field sets (managers that own nothing are dropped)."""
    return [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": _to_fields(paths),
        }
        for (manager, operation), paths in sorted(managed.items())
        if paths
    ]


def apply(live: Body | None, config: Mapping[str, Any], manager: str, *, force: bool) -> tuple[Body, Managed]:
    """The object after `manager` applies `config` to `live`, and the new field sets."""
    managed = parse(live)
    mine = (manager, "Apply")
    previous, wanted = managed.get(mine, set()), paths_of(config)
    conflicts = [
        (owner, path)
        for (owner, operation), paths in sorted(managed.items())
        if (owner, operation) != mine
        for path in sorted(paths & wanted)
        if _differs(live, config, path)
    ]
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for owner, path in conflicts:
        for (name, _), paths in managed.items():
            if name == owner:
                paths.discard(path)
    merged: Body = patching.strategic_merge_patch(copy.deepcopy(live or {}), copy.deepcopy(dict(config)))
    others = set().union(*(paths for key, paths in managed.items() if key != mine))
    for path in sorted(previous - wanted, key=len, reverse=True):
        if path not in others and not any(other[: len(path)] == path for other in others):
            remove(merged, path)
    managed[mine] = wanted
    return merged, managed


def record_update(old: Body | None, new: Body, manager: str) -> Managed:
    """The field sets after a non-apply write by `manager`: it owns what it changed."""
    managed = parse(old)
    before, after = paths_of(old), paths_of(new)
    changed = {path for path in after if _differs(old, new, path)}
    gone = before - after
    for paths in managed.values():
        paths -= changed | gone
    if changed:
        managed.setdefault((manager, "Update"), set()).update(changed)
    return managed


UNKNOWN_MANAGER = "unknown"


def manager_of(params: Mapping[str, str], user_agent: str) -> str:
    """The field manager of a write: `?fieldManager=`, else the User-Agent's product (as the apiserver)."""
    return params.get("fieldManager") or user_agent.split("/")[0] or UNKNOWN_MANAGER
