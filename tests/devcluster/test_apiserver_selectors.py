"""Label and field selectors, as pure predicates and on lists."""

from __future__ import annotations

from typing import Any

import httpx
import kmock
import pytest

from tests.devcluster.conftest import CONFIGMAPS
from ttsfleet.devcluster.apiserver import selectors

OBJ: dict[str, Any] = {
    "metadata": {"name": "n", "namespace": "ns", "labels": {"app": "tts", "tier": "edge"}},
    "type": "Opaque",
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("app=tts", True, id="equals"),
        pytest.param("app==tts,tier=edge", True, id="double-equals-and"),
        pytest.param("app!=tts", False, id="not-equals"),
        pytest.param("tier in (core,edge)", True, id="in"),
        pytest.param("tier notin (core,edge)", False, id="notin"),
        pytest.param("missing notin (a)", True, id="notin-absent"),
        pytest.param("app", True, id="exists"),
        pytest.param("!app", False, id="not-exists"),
        pytest.param("", True, id="empty"),
    ],
)
def test_label_selectors(selector: str, expected: bool) -> None:
    assert selectors.label_predicate(selector)(OBJ) is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param("metadata.name=n", True, id="name"),
        pytest.param("metadata.namespace!=ns", False, id="namespace-not"),
        pytest.param("type=Opaque,metadata.name==n", True, id="two-fields"),
        pytest.param("spec.nodeName=", True, id="missing-is-empty"),
    ],
)
def test_field_selectors(selector: str, expected: bool) -> None:
    assert selectors.field_predicate(selector)(OBJ) is expected


def test_a_malformed_selector_is_a_bad_request() -> None:
    with pytest.raises(kmock.KubernetesError) as info:
        selectors.label_predicate("a in (b")
    assert info.value.status == 400


def test_label_selector_objects_become_strings() -> None:
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "c", "operator": "In", "values": ["x", "y"]},
            {"key": "d", "operator": "DoesNotExist"},
        ],
    }
    assert selectors.selector_string(selector) == "a=1,b=2,c in (x,y),!d"


async def test_lists_honour_label_and_field_selectors(client: httpx.AsyncClient) -> None:
    for name, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        await client.post(CONFIGMAPS, json={"metadata": {"name": name, "labels": {"tier": tier}}})

    async def names(**params: str) -> list[str]:
        listed = (await client.get(CONFIGMAPS, params=params)).json()
        return [item["metadata"]["name"] for item in listed["items"]]

    assert await names(labelSelector="tier=x") == ["a", "b"]
    assert await names(fieldSelector="metadata.name=c") == ["c"]
    assert await names(labelSelector="tier=x", fieldSelector="metadata.name!=a") == ["b"]
    cluster_wide = await client.get(
        "/api/v1/configmaps", params={"fieldSelector": "metadata.namespace=default"}
    )
    assert len(cluster_wide.json()["items"]) == 3
