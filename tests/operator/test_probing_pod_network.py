"""The operator's /statusz probes through a pod-network table, against a real gateway process.

On the local fleet's real control plane pods have IPs from the node's pod CIDR that this machine cannot
route; the node agent publishes where each pod IP and port really listens, and the operator, given the
table's file, dials that instead. Without the table it dials the pod IP, as in a cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import running_emulator
from ttsfleet.devcluster.nodeagent import objects
from ttsfleet.operator import probing, running
from ttsfleet.operator.settings import OperatorSettings

GATEWAY_PORT = 8080


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    with (
        running_emulator(tmp_path) as upstream,
        running_gateway(tmp_path, upstream, tmp_path / "gateway") as gateway,
    ):
        yield gateway


def ready_pod(name: str, pod_ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "voice"},
        "status": {"podIP": pod_ip, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def publish(addresses: objects.PodAddresses, path: Path) -> None:
    """What the node agent does on every change: replace the file with the table, atomically."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(addresses.table()))
    staging.replace(path)


async def probe_once(url_of: probing.StatuszUrl, pods: list[dict[str, Any]]) -> probing.ProbeResult:
    prober = probing.Prober(url_of, timeout_s=1.0)
    try:
        return await prober.probe(pods)
    finally:
        await prober.aclose()


def test_a_pod_ip_is_asked_where_the_table_maps_it_and_a_pod_gone_from_it_is_a_failure(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    table_file = tmp_path / "pod-network.json"
    addresses = objects.PodAddresses("10.244.0.0/24")
    pod_ip = addresses.assign([GATEWAY_PORT], gateway.process.port)
    publish(addresses, table_file)
    url_of = probing.pod_network_statusz(GATEWAY_PORT, table_file)

    result = asyncio.run(probe_once(url_of, [ready_pod("aura-en-1", pod_ip)]))
    assert result.failures == 0
    assert [report["pod"] for report in result.reports] == [gateway.status()["pod"]]

    addresses.release(pod_ip)
    publish(addresses, table_file)
    assert url_of(ready_pod("aura-en-1", pod_ip)) is None  # the table is re-read once it changes
    assert asyncio.run(probe_once(url_of, [ready_pod("aura-en-1", pod_ip)])).failures == 1


def test_without_a_table_the_pod_ip_itself_is_dialled(tmp_path: Path) -> None:
    """Production: no table, the pod IP and the gateway port (here a missing table file maps nothing)."""
    pod = ready_pod("aura-en-1", "10.244.0.9")
    assert running.default_statusz_url(OperatorSettings())(pod) == "http://10.244.0.9:8080/statusz"
    with_table = OperatorSettings(pod_network_file=tmp_path / "absent.json")
    assert running.default_statusz_url(with_table)(pod) is None


def test_a_torn_or_foreign_table_maps_nothing_rather_than_failing(tmp_path: Path) -> None:
    table_file = tmp_path / "pod-network.json"
    url_of = probing.pod_network_statusz(GATEWAY_PORT, table_file)
    for content in ("{", "[1, 2]", json.dumps({"10.244.0.2": {"8080": "not a port"}})):
        table_file.write_text(content)
        assert url_of(ready_pod("p", "10.244.0.2")) is None
