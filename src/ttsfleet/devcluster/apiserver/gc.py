"""Garbage collection by ownerReferences, as the controller-manager's collector does it in background mode.

When an owner goes away, each dependent whose ownerReferences all point at objects that no longer exist
is deleted (finalizers respected, so it may only be marked), and its own dependents follow in turn.
`Orphan` propagation strips the reference instead. Foreground deletion is treated as background. Runs
synchronously right after the owner's removal, so tests see a settled store when the delete returns.
"""

from __future__ import annotations

from collections.abc import Callable

from ttsfleet.devcluster.apiserver.storage import Body, ObjectKey, Store


def _owner_uids(body: Body) -> list[str]:
    return [ref.get("uid", "") for ref in body["metadata"].get("ownerReferences") or []]


def dependents_of(store: Store, owner_uid: str) -> list[ObjectKey]:
    """Keys of objects that name `owner_uid` among their owners."""
    return [key for key, body in store.items() if owner_uid in _owner_uids(body)]


def collect(store: Store, owner_uid: str, delete: Callable[[ObjectKey], None]) -> list[ObjectKey]:
    """Delete the dependents of a removed owner that have no live owner left; returns their keys."""
    live = {body["metadata"].get("uid") for _, body in store.items()}
    collected = []
    for key in dependents_of(store, owner_uid):
        body = store.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            continue  # already gone or already going (its finalizers decide)
        if not any(uid in live for uid in _owner_uids(body)):
            collected.append(key)
            delete(key)
    return collected


def orphan(store: Store, owner_uid: str) -> list[ObjectKey]:
    """Drop the references to an owner that is deleted with `propagationPolicy: Orphan`."""
    orphaned = []
    for key in dependents_of(store, owner_uid):
        body = store.get(key)
        if body is None:
            continue
        refs = [ref for ref in body["metadata"]["ownerReferences"] if ref.get("uid") != owner_uid]
        metadata = dict(body["metadata"], ownerReferences=refs)
        if not refs:
            del metadata["ownerReferences"]
        store.write(key, dict(body, metadata=metadata))
        orphaned.append(key)
    return orphaned
