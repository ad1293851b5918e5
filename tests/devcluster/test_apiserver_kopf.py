"""A tiny kopf operator, in-process, against the embedded API: create, update and delete with finalizer."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Collection, Iterator
from typing import Any

import httpx
import kopf
import pytest

from tests.devcluster.conftest import CRD_PATH, MERGE, WIDGETS, widget_crd
from tests.support.waiting import wait_until
from ttsfleet.devcluster.apiserver import ApiServer

WIDGET = ("example.dev", "v1", "widgets")


class NotKopfTasks(Collection["asyncio.Task[Any]"]):
    """Every task except kopf's own, for `kopf.run_tasks(ignored=...)`, evaluated when kopf stops.

    kopf cancels every task that did not exist when it started; a snapshot would include pytest-asyncio's
    fixture-finalizer task and the API server's connection handlers, which are not kopf's to stop.
    """

    @staticmethod
    def _is_kopf(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and f"{os.sep}kopf{os.sep}" in code.co_filename

    def __contains__(self, task: object) -> bool:
        return isinstance(task, asyncio.Task) and not self._is_kopf(task)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter([task for task in asyncio.all_tasks() if task in self])

    def __len__(self) -> int:
        return len(list(iter(self)))


class Seen:
    """What the handlers saw, for the test to assert on."""

    def __init__(self) -> None:
        self.diffs: list[list[Any]] = []
        self.deleted: list[str] = []


@pytest.fixture
async def operator(apiserver: ApiServer, client: httpx.AsyncClient) -> AsyncIterator[Seen]:
    """kopf with its own registry (no handler leaks between tests), standalone, in namespace default."""
    assert (await client.post(CRD_PATH, json=widget_crd())).status_code == 201
    registry = kopf.OperatorRegistry()
    seen = Seen()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=apiserver.base_url)

    @kopf.on.create(*WIDGET, id="created", registry=registry)
    def created(body: kopf.Body, spec: kopf.Spec, **_: Any) -> dict[str, Any]:
        # Two Events for one object: both are posted with generateName, so both must be stored.
        kopf.info(body, reason="Created", message="widget created")
        kopf.info(body, reason="Sized", message=f"size {spec.get('size')}")
        return {"size": spec.get("size")}  # kopf writes it to status.created

    @kopf.on.update(*WIDGET, id="updated", registry=registry)
    def updated(diff: kopf.Diff, patch: kopf.Patch, **_: Any) -> None:
        seen.diffs.append([(op, path, old, new) for op, path, old, new in diff])
        patch.status["observed"] = "updated"

    @kopf.on.delete(*WIDGET, id="deleted", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        seen.deleted.append(name)

    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 30
    stop = asyncio.Event()
    tasks = await kopf.spawn_tasks(
        registry=registry, settings=settings, standalone=True, namespaces=["default"], stop_flag=stop
    )
    running = asyncio.create_task(
        kopf.run_tasks(tasks, ignored=NotKopfTasks()), name="kopf operator under test"
    )
    try:
        yield seen
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await running


async def test_kopf_handles_create_update_and_delete(
    operator: Seen,
    client: httpx.AsyncClient,
    apiserver: ApiServer,
) -> None:
    await client.post(
        WIDGETS,
        json={
            "apiVersion": "example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 1},
        },
    )

    def status() -> dict[str, Any]:
        body = apiserver.get_object("example.dev/v1/widgets", "default", "w")
        return (body or {}).get("status") or {}

    await wait_until(lambda: status().get("created") == {"size": 1}, what="the create handler's status")
    widget = apiserver.get_object("example.dev/v1/widgets", "default", "w")
    assert widget is not None and widget["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    assert widget["metadata"]["generation"] == 1

    await client.patch(f"{WIDGETS}/w", json={"spec": {"size": 3}}, headers=MERGE)
    await wait_until(lambda: status().get("observed") == "updated", what="the update handler")
    assert operator.diffs == [[("change", ("spec", "size"), 1, 3)]]

    await client.delete(f"{WIDGETS}/w")
    await wait_until(
        lambda: apiserver.get_object("example.dev/v1/widgets", "default", "w") is None,
        what="kopf to release its finalizer",
    )
    assert operator.deleted == ["w"]

    def posted_events() -> list[str]:
        return [
            event["reason"]
            for event in apiserver.list_objects("v1/events", "default")
            if event["involvedObject"]["name"] == "w"
        ]

    # kopf posts Events from a background queue, so they may land after the handlers finished.
    await wait_until(lambda: sorted(posted_events()) == ["Created", "Sized"], what="kopf's Events")
