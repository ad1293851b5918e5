"""Watch streams: subscribe first, then send the snapshot or the history since `?resourceVersion=`.

Without a resourceVersion (or with "0", or `sendInitialEvents=true`) the stream starts with ADDED for
every matching object; with one it replays newer changes only, or sends a 410 ERROR event if the history
no longer reaches back that far. Selectors turn modifications into ADDED/DELETED as objects start or stop
matching. BOOKMARKs go out on idle intervals when `allowWatchBookmarks=true`; `timeoutSeconds` ends the
stream. The first chunk is empty so that headers go out before anything happens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import kmock

from ttsfleet.devcluster.apiserver import selectors
from ttsfleet.devcluster.apiserver.resources import ResourceSpec
from ttsfleet.devcluster.apiserver.storage import Body, Change, Store

Event = dict[str, Any]


def _scope(namespace: str | None, name: str | None) -> selectors.Predicate:
    def matches(obj: Mapping[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        return (namespace is None or metadata.get("namespace") == namespace) and (
            name is None or metadata.get("name") == name
        )

    return matches


def _event_of(change: Change, matches: selectors.Predicate, present: Callable[[Body], Body]) -> Event | None:
    now = change.type != "DELETED" and matches(change.obj)
    before = change.previous is not None and matches(change.previous)
    if change.type == "DELETED":
        kind = "DELETED" if before else None
    elif now:
        kind = "MODIFIED" if before else "ADDED"
    else:
        kind = "DELETED" if before else None
    return None if kind is None else {"type": kind, "object": present(change.obj)}


def _bookmark(spec: ResourceSpec, resource_version: int, *, initial_end: bool = False) -> Event:
    metadata: Body = {"resourceVersion": str(resource_version)}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {
        "type": "BOOKMARK",
        "object": {"apiVersion": spec.api_version, "kind": spec.kind, "metadata": metadata},
    }


def _gone(message: str) -> Event:
    return {
        "type": "ERROR",
        "object": {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "reason": "Expired",
            "code": 410,
            "message": message,
        },
    }


async def stream(
    store: Store,
    spec: ResourceSpec,
    request: kmock.Request,
    present: Callable[[Body], Body],
    bookmark_interval_s: float,
) -> AsyncIterator[bytes | Event]:
    """The events of one watch request, as kmock streams them (dicts become JSON lines)."""
    params = request.params
    in_scope = _scope(request.namespace, request.name)
    by_selectors = selectors.request_predicate(params)

    def matches(obj: Mapping[str, Any]) -> bool:
        return in_scope(obj) and by_selectors(obj)

    since = params.get("resourceVersion") or "0"
    initial_events = params.get("sendInitialEvents") == "true" or since == "0"
    bookmarks = params.get("allowWatchBookmarks") == "true"
    timeout_s = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None

    # Subscribing and taking the snapshot happen in one event-loop step: no write can fall between.
    subscription = store.subscribe(spec.group, spec.plural)
    try:
        backlog: list[Event | None]
        if initial_events:
            backlog = [
                {"type": "ADDED", "object": present(obj)}
                for obj in store.objects_of(spec.group, spec.plural, request.namespace)
                if matches(obj)
            ]
        else:
            try:
                changes = store.changes_since(spec.group, spec.plural, int(since))
            except kmock.KubernetesError as exc:
                yield b""
                yield _gone(exc.message or "too old resource version")
                return
            backlog = [_event_of(change, matches, present) for change in changes]
        snapshot_version = store.resource_version

        yield b""
        for event in backlog:
            if event is not None:
                yield event
        if initial_events and bookmarks and params.get("sendInitialEvents") == "true":
            yield _bookmark(spec, snapshot_version, initial_end=True)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s is not None else None
        while True:
            wait_s = bookmark_interval_s
            if deadline is not None:
                wait_s = min(wait_s, deadline - loop.time())
                if wait_s <= 0:
                    return
            try:
                async with asyncio.timeout(wait_s):
                    change = await subscription.queue.get()
            except TimeoutError:
                # An idle stream with an empty queue has seen everything up to the store's version.
                if bookmarks and subscription.queue.empty():
                    yield _bookmark(spec, store.resource_version)
                continue
            if change is None:
                return
            event = _event_of(change, matches, present)
            if event is not None:
                yield event
    finally:
        store.unsubscribe(subscription)
