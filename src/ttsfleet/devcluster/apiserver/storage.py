"""In-memory object storage with one global, monotonic resourceVersion and a change feed for watches.

Every write gets the next resourceVersion and becomes a `Change` that goes to the bounded history (for
watches resuming from a resourceVersion) and to every subscriber's queue. All methods are synchronous, so
a read-modify-write in one event-loop step is atomic; stored dicts are never mutated after `write`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ttsfleet.devcluster.apiserver import errors

Body = dict[str, Any]
# (group, plural, namespace or "" for cluster-scoped objects, name)
ObjectKey = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class Change:
    """One stored write, as watches see it."""

    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    group: str
    plural: str
    obj: Body
    previous: Body | None


@dataclass(eq=False)
class Subscription:
    """A watcher's queue of changes to one resource; `None` in the queue means "stop"."""

    group: str
    plural: str
    queue: asyncio.Queue[Change | None] = field(default_factory=asyncio.Queue)


def object_key(group: str, plural: str, body: Body) -> ObjectKey:
    """Where a body with name and (maybe) namespace is stored."""
    metadata = body.get("metadata") or {}
    return (group, plural, metadata.get("namespace") or "", metadata["name"])


class Store:
    """Objects by key, the change history and the live subscribers."""

    def __init__(self, history_size: int = 10_000) -> None:
        self._objects: dict[ObjectKey, Body] = {}
        self._history: collections.deque[Change] = collections.deque(maxlen=history_size)
        self._subscriptions: set[Subscription] = set()
        # Start above 1 so that "0" and "1" never collide with a real version ("0" means "any").
        self._resource_version = 100
        # The newest version dropped from the history: watches from older versions get 410 Gone.
        self._compacted_version = self._resource_version

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out (lists report it)."""
        return self._resource_version

    def get(self, key: ObjectKey) -> Body | None:
        """The stored object, or None; do not mutate it."""
        return self._objects.get(key)

    def objects_of(self, group: str, plural: str, namespace: str | None = None) -> list[Body]:
        """Objects of a resource, in one namespace or all; do not mutate them."""
        return [
            obj
            for (g, p, ns, _), obj in sorted(self._objects.items(), key=lambda item: item[0])
            if g == group and p == plural and (namespace is None or ns == namespace)
        ]

    def items(self) -> Iterator[tuple[ObjectKey, Body]]:
        """Every stored object with its key (a snapshot, safe to write while iterating)."""
        return iter(list(self._objects.items()))

    def write(self, key: ObjectKey, body: Body) -> Body:
        """Store a new state under the next resourceVersion; ADDED or MODIFIED goes to watchers."""
        previous = self._objects.get(key)
        stored = self._versioned(body)
        self._objects[key] = stored
        self._publish("MODIFIED" if previous is not None else "ADDED", key, stored, previous)
        return stored

    def remove(self, key: ObjectKey) -> Body:
        """Drop an object; watchers get DELETED with the last state under a new resourceVersion."""
        previous = self._objects.pop(key)
        final = self._versioned(previous)
        self._publish("DELETED", key, final, previous)
        return final

    def _versioned(self, body: Body) -> Body:
        self._resource_version += 1
        metadata = dict(body.get("metadata") or {}, resourceVersion=str(self._resource_version))
        return dict(body, metadata=metadata)

    def _publish(self, kind: str, key: ObjectKey, obj: Body, previous: Body | None) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted_version = self._history[0].resource_version
        change = Change(self._resource_version, kind, key[0], key[1], obj, previous)
        self._history.append(change)
        for subscription in self._subscriptions:
            if (subscription.group, subscription.plural) == (key[0], key[1]):
                subscription.queue.put_nowait(change)

    def subscribe(self, group: str, plural: str) -> Subscription:
        """Start queueing changes of a resource; take a snapshot in the same step for no gaps."""
        subscription = Subscription(group, plural)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop queueing for a watcher that ended."""
        self._subscriptions.discard(subscription)

    def changes_since(self, group: str, plural: str, resource_version: int) -> list[Change]:
        """Changes of a resource newer than `resource_version`; 410 Gone if the history lost some."""
        if resource_version < self._compacted_version:
            raise errors.gone(f"too old resource version: {resource_version} ({self._compacted_version})")
        return [
            change
            for change in self._history
            if change.resource_version > resource_version and (change.group, change.plural) == (group, plural)
        ]

    def close_subscriptions(self) -> None:
        """End every watch stream (before the server stops, so that shutdown does not wait for them)."""
        for subscription in self._subscriptions:
            subscription.queue.put_nowait(None)
        self._subscriptions.clear()
