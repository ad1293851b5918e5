"""Watch streams: snapshot, resume from a resourceVersion, selectors, bookmarks, timeouts, 410."""

from __future__ import annotations

import httpx

from tests.devcluster.conftest import CONFIGMAPS, MERGE, read_events
from ttsfleet.devcluster.apiserver import ApiServer


async def test_watch_without_version_sends_the_snapshot_then_changes(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "a"}})
    async with client.stream("GET", CONFIGMAPS, params={"watch": "true"}) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        lines = response.aiter_lines()
        [added] = await read_events(lines, 1)
        assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "a")
        await client.patch(f"{CONFIGMAPS}/a", json={"data": {"k": "v"}}, headers=MERGE)
        await client.delete(f"{CONFIGMAPS}/a")
        events = await read_events(lines, 2)
    assert [event["type"] for event in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"k": "v"}


async def test_watch_from_a_version_sends_only_newer_changes(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "old"}})
    version = (await client.get(CONFIGMAPS)).json()["metadata"]["resourceVersion"]
    await client.post(CONFIGMAPS, json={"metadata": {"name": "new"}})
    params = {"watch": "true", "resourceVersion": version}
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        lines = response.aiter_lines()
        [event] = await read_events(lines, 1)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "new")
        await client.post(CONFIGMAPS, json={"metadata": {"name": "live"}})
        [live] = await read_events(lines, 1)
    assert live["object"]["metadata"]["name"] == "live"


async def test_watch_with_a_label_selector_sees_objects_enter_and_leave(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "c", "labels": {"tier": "x"}}})
    params = {"watch": "true", "labelSelector": "tier=y"}
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        lines = response.aiter_lines()
        await client.patch(f"{CONFIGMAPS}/c", json={"metadata": {"labels": {"tier": "y"}}}, headers=MERGE)
        await client.patch(f"{CONFIGMAPS}/c", json={"data": {"a": "b"}}, headers=MERGE)
        await client.patch(f"{CONFIGMAPS}/c", json={"metadata": {"labels": {"tier": "z"}}}, headers=MERGE)
        events = await read_events(lines, 3)
    assert [event["type"] for event in events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_watch_with_a_field_selector_sees_only_that_name(client: httpx.AsyncClient) -> None:
    params = {"watch": "true", "fieldSelector": "metadata.name=b"}
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        lines = response.aiter_lines()
        for name in ("a", "b", "c"):
            await client.post(CONFIGMAPS, json={"metadata": {"name": name}})
        await client.delete(f"{CONFIGMAPS}/b")
        events = await read_events(lines, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("DELETED", "b"),
    ]


async def test_watch_ends_after_timeout_seconds(client: httpx.AsyncClient) -> None:
    params = {"watch": "true", "timeoutSeconds": "1"}
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        body = [line async for line in response.aiter_lines()]
    assert body == []


async def test_idle_watch_with_bookmarks_gets_bookmarks_at_the_latest_version(
    client: httpx.AsyncClient,
    apiserver: ApiServer,
) -> None:
    params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": "0"}
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        [bookmark] = await read_events(response.aiter_lines(), 1)
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(apiserver.store.resource_version)


async def test_initial_events_end_with_a_bookmark_when_asked(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json={"metadata": {"name": "a"}})
    params = {
        "watch": "true",
        "allowWatchBookmarks": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        added, bookmark = await read_events(response.aiter_lines(), 2)
    assert added["type"] == "ADDED" and bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_from_a_compacted_version_gets_410(client: httpx.AsyncClient) -> None:
    params = {"watch": "true", "resourceVersion": "1"}
    async with client.stream("GET", CONFIGMAPS, params=params) as response:
        [error] = await read_events(response.aiter_lines(), 1)
    assert error["type"] == "ERROR" and error["object"]["code"] == 410


async def test_namespaced_watch_ignores_other_namespaces(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    async with client.stream("GET", CONFIGMAPS, params={"watch": "true"}) as response:
        lines = response.aiter_lines()
        await client.post("/api/v1/namespaces/other/configmaps", json={"metadata": {"name": "x"}})
        await client.post(CONFIGMAPS, json={"metadata": {"name": "y"}})
        [event] = await read_events(lines, 1)
    assert event["object"]["metadata"]["name"] == "y"
