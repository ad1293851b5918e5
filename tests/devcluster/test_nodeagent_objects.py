"""The node agent's and the Service proxy's pure parts: pod addresses, pod status, ready endpoints."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from ttsfleet.devcluster.nodeagent import objects
from ttsfleet.devcluster.serviceproxy import ready_endpoints

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
CONTAINER = {"name": "gateway", "image": "ttsfleet/dataplane:1", "ports": [{"containerPort": 8080}]}


def test_each_pod_gets_its_own_address_and_its_declared_ports_lead_to_its_loopback_port() -> None:
    addresses = objects.PodAddresses("10.244.0.0/29")
    first = addresses.assign([8080, 9090], 41000)
    second = addresses.assign([8080], 41001)
    assert first != second
    assert first != "10.244.0.1"  # the node's own
    assert addresses.local(first, 8080) == addresses.local(first, 9090) == ("127.0.0.1", 41000)
    assert addresses.local(second, 8080) == ("127.0.0.1", 41001)
    assert addresses.local(second, 9090) is None
    addresses.release(first)
    assert addresses.local(first, 8080) is None


def test_an_exhausted_pod_cidr_is_an_error_not_a_shared_address() -> None:
    addresses = objects.PodAddresses("10.244.0.0/30")  # two hosts: the node's and one pod's
    addresses.assign([8080], 1)
    with pytest.raises(RuntimeError, match="exhausted"):
        addresses.assign([8080], 2)


def _status(previous: dict[str, Any] | None, **kwargs: Any) -> dict[str, Any]:
    values = {"running": True, "ready": True, "restarts": 0, "now": T0, **kwargs}
    return objects.pod_status(container=CONTAINER, pod_ip="10.244.0.2", previous=previous, **values)


def test_pod_status_keeps_transition_times_while_conditions_hold_and_reports_restarts() -> None:
    first = _status(None, ready=False)
    later = T0 + datetime.timedelta(seconds=5)
    ready = _status(first, now=later)
    conditions = {c["type"]: c for c in ready["conditions"]}
    assert conditions["PodScheduled"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2026-01-01T00:00:05Z",
    }
    assert ready["podIP"] == "10.244.0.2" and ready["podIPs"] == [{"ip": "10.244.0.2"}]
    restarted = _status(ready, restarts=1, now=later + datetime.timedelta(seconds=5))
    container = restarted["containerStatuses"][0]
    assert container["restartCount"] == 1
    assert container["state"]["running"]["startedAt"] == "2026-01-01T00:00:10Z"
    pending = _status(None, running=False, ready=False)
    assert pending["phase"] == "Pending"
    assert pending["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}


def _slice(service: str, port_name: str, endpoints: list[tuple[str, dict[str, bool]]]) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
        "ports": [{"name": port_name, "port": 8080}],
        "endpoints": [{"addresses": [a], "conditions": c} for a, c in endpoints],
    }


def test_only_ready_endpoints_of_the_service_port_take_connections() -> None:
    slices = {
        ("voice", "a"): _slice(
            "gw",
            "http",
            [
                ("10.244.0.2", {"ready": True}),
                ("10.244.0.3", {"ready": False, "serving": True, "terminating": True}),
                ("10.244.0.4", {"ready": False}),
            ],
        ),
        ("voice", "b"): _slice("other", "http", [("10.244.0.5", {"ready": True})]),
        ("default", "c"): _slice("gw", "http", [("10.244.0.6", {"ready": True})]),
        ("voice", "d"): _slice("gw", "metrics", [("10.244.0.7", {"ready": True})]),
    }
    assert ready_endpoints(slices, ("voice", "gw"), "http") == [("10.244.0.2", 8080)]


def test_the_pod_network_table_lists_each_pod_ip_and_port_with_its_loopback_port() -> None:
    addresses = objects.PodAddresses("10.244.0.0/29")
    first = addresses.assign([8080, 9090], 41000)
    second = addresses.assign([8080], 41001)
    assert addresses.table() == {first: {"8080": 41000, "9090": 41000}, second: {"8080": 41001}}
    addresses.release(first)
    assert addresses.table() == {second: {"8080": 41001}}
