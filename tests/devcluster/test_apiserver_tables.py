"""Server-side Tables: the columns `kubectl get` prints come from the API, as a real apiserver sends them."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import pytest

from tests.devcluster.conftest import CONFIGMAPS, CRD_PATH, WIDGETS, widget_crd
from tests.support.waiting import wait_until
from ttsfleet.devcluster.apiserver import ApiServer, tables

KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)
NOW = datetime.datetime(2026, 11, 24, 12, 0, 0, tzinfo=datetime.UTC)
CONDITIONS = {
    "conditions": [
        {"type": "Available", "status": "True", "reason": "Up"},
        {"type": "Ready", "status": "False", "reason": "RollingOut"},
    ],
    "replicas": 3,
}


def test_the_jsonpath_subset_selects_fields_indexes_wildcards_and_filters() -> None:
    obj: dict[str, Any] = {"status": CONDITIONS, "spec": {"ports": [{"port": 80}, {"port": 443}]}}
    assert tables.evaluate(obj, ".status.replicas") == [3]
    assert tables.evaluate(obj, '.status.conditions[?(@.type=="Ready")].reason') == ["RollingOut"]
    assert tables.evaluate(obj, ".status.conditions[?(@.type=='Gone')].reason") == []
    assert tables.evaluate(obj, ".spec.ports[*].port") == [80, 443]
    assert tables.evaluate(obj, ".spec.ports[-1].port") == [443]
    assert tables.evaluate(obj, "{.spec.missing.deeper}") == []
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        tables.evaluate(obj, ".spec..ports")


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (900, "15m"),
        (3 * 3600 + 120, "3h2m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
    ],
)
def test_ages_are_spelled_as_kubectl_spells_them(seconds: int, age: str) -> None:
    created = (NOW - datetime.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    assert tables.human_age(created, NOW) == age
    assert tables.human_age("not a time", NOW) == "<unknown>"


def test_only_a_meta_v1_table_request_gets_a_table() -> None:
    assert tables.wants_table(KUBECTL_ACCEPT)
    assert not tables.wants_table("application/json")
    assert not tables.wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")


def _printer_crd() -> dict[str, Any]:
    crd = widget_crd()
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return crd


async def test_a_custom_resource_lists_as_a_table_of_its_printer_columns(
    apiserver: ApiServer, client: httpx.AsyncClient
) -> None:
    assert (await client.post(CRD_PATH, json=_printer_crd())).status_code == 201
    await wait_until(lambda: apiserver.registry.find("example.dev", "v1", "widgets") is not None)
    widget = {"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "w1"}}
    assert (await client.post(WIDGETS, json=widget)).status_code == 201
    status = {"metadata": {"name": "w1"}, "status": CONDITIONS}
    headers = {"Content-Type": "application/merge-patch+json"}
    assert (await client.patch(f"{WIDGETS}/w1/status", json=status, headers=headers)).status_code == 200

    listed = (await client.get(WIDGETS, headers={"Accept": KUBECTL_ACCEPT})).json()
    assert listed["kind"] == "Table" and listed["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in listed["columnDefinitions"]] == ["Name", "Ready", "Replicas", "Age"]
    [row] = listed["rows"]
    assert row["cells"][:3] == ["w1", "False", 3]
    assert row["cells"][3].endswith("s")  # just created: an age in seconds
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "w1"

    one = (await client.get(f"{WIDGETS}/w1", headers={"Accept": KUBECTL_ACCEPT})).json()
    assert [r["cells"][0] for r in one["rows"]] == ["w1"]
    plain = (await client.get(f"{WIDGETS}/w1")).json()
    assert plain["kind"] == "Widget"  # JSON clients are unaffected


async def test_a_builtin_resource_gets_name_and_age(client: httpx.AsyncClient) -> None:
    config = {"metadata": {"name": "settings"}, "data": {"a": "b"}}
    assert (await client.post(CONFIGMAPS, json=config)).status_code == 201
    listed = (await client.get(CONFIGMAPS, headers={"Accept": KUBECTL_ACCEPT})).json()
    assert [c["name"] for c in listed["columnDefinitions"]] == ["Name", "Age"]
    assert [r["cells"][0] for r in listed["rows"]] == ["settings"]
