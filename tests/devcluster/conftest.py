"""Fixtures for the embedded API: a server per test, an HTTP client on it, and condition waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ttsfleet.devcluster.apiserver import ApiServer, running_apiserver

MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.dev/v1/namespaces/default/widgets"


def widget_crd(*, scale: bool = True) -> dict[str, Any]:
    """A namespaced `Widget` CRD with a status subresource and, optionally, a scale subresource."""
    subresources: dict[str, Any] = {"status": {}}
    if scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.size",
            "statusReplicasPath": ".status.size",
            "labelSelectorPath": ".status.selector",
        }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.dev"},
        "spec": {
            "group": "example.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    """A fresh API on a free port; short bookmark intervals keep bookmark tests quick."""
    async with running_apiserver(bookmark_interval_s=0.2) as server:
        yield server


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the API that fails loudly on nothing (tests check statuses themselves)."""
    async with httpx.AsyncClient(base_url=apiserver.base_url, timeout=10.0) as http:
        yield http


def deployment(name: str, replicas: int = 1, **labels: str) -> dict[str, Any]:
    """A minimal Deployment body."""
    match = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**match, **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {"labels": match},
                "spec": {"containers": [{"name": "app", "image": "gateway:1"}]},
            },
        },
    }


async def read_events(lines: AsyncIterator[str], count: int, deadline_s: float = 5.0) -> list[dict[str, Any]]:
    """The next `count` events from a watch's line iterator (`response.aiter_lines()`, made once)."""
    events: list[dict[str, Any]] = []

    async def collect() -> None:
        while len(events) < count:
            line = await anext(lines)
            if line.strip():
                events.append(json.loads(line))

    async with asyncio.timeout(deadline_s):
        await collect()
    return events
