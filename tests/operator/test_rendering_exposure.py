"""The NetworkPolicy and the ServiceMonitor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ttsfleet.operator import api, rendering
from ttsfleet.operator.rendering import OwnerRef, exposure

BackendOf = Callable[..., api.TTSBackend]


def policy_of(backend: api.TTSBackend, owner: OwnerRef) -> dict[str, Any]:
    policy = rendering.render_network_policy(backend, owner)
    assert policy is not None
    return policy


def test_nothing_rendered_when_disabled(backend_of: BackendOf, owner: OwnerRef) -> None:
    assert rendering.render_network_policy(backend_of(), owner) is None
    assert rendering.render_service_monitor(backend_of(), owner) is None


def test_ingress_only_from_agents_and_prometheus_on_the_pod_port(
    backend_of: BackendOf, owner: OwnerRef
) -> None:
    spec = policy_of(backend_of(networkPolicy={"enabled": True}), owner)["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    agents, prometheus = spec["ingress"]
    assert agents["from"] == [
        {"namespaceSelector": {"matchLabels": {"ttsfleet.io/tts-clients": "true"}}, "podSelector": {}}
    ]
    assert prometheus["from"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    ]
    assert agents["ports"] == prometheus["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert agents["ports"] is not prometheus["ports"]


def test_egress_to_dns_and_deepgram_only(backend_of: BackendOf, owner: OwnerRef) -> None:
    backend = backend_of(
        networkPolicy={"enabled": True, "upstreamCIDRs": ["203.0.113.0/24", "198.51.100.0/24"]}
    )
    dns, upstream = policy_of(backend, owner)["spec"]["egress"]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # OpenShift's resolvers answer on 5353, NodeLocal DNSCache on a link-local address.
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}}} in dns[
        "to"
    ]
    assert {"ipBlock": {"cidr": "169.254.20.10/32"}} in dns["to"]
    assert {(port["protocol"], port["port"]) for port in dns["ports"]} == {
        (protocol, port) for protocol in ("UDP", "TCP") for port in (53, 5353)
    }
    assert upstream["to"] == [
        {"ipBlock": {"cidr": "203.0.113.0/24"}},
        {"ipBlock": {"cidr": "198.51.100.0/24"}},
    ]
    assert upstream["ports"] == [{"protocol": "TCP", "port": 443}]


@pytest.mark.parametrize(
    ("deepgram", "ports"),
    [
        pytest.param({}, [443], id="deepgram"),
        pytest.param({"url": "ws://emulator.voice:8900"}, [8900], id="emulator"),
        pytest.param({"url": "ws://emulator.voice"}, [80], id="plain-ws"),
        pytest.param(
            {"url": "wss://dg.example", "restUrl": "https://rest.example:8443"}, [443, 8443], id="rest"
        ),
    ],
)
def test_upstream_ports_come_from_the_urls(spec_of: Any, deepgram: dict[str, Any], ports: list[int]) -> None:
    spec = api.parse_spec(spec_of(deepgram=deepgram))
    assert exposure.upstream_ports(spec.deepgram) == ports


def test_peers_with_both_label_sets(backend_of: BackendOf, owner: OwnerRef) -> None:
    agents = {"namespaceLabels": {"team": "voice"}, "podLabels": {"role": "agent"}}
    spec = policy_of(backend_of(networkPolicy={"enabled": True, "agents": agents}), owner)["spec"]
    assert spec["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"team": "voice"}},
            "podSelector": {"matchLabels": {"role": "agent"}},
        }
    ]


def test_the_operators_probes_are_admitted_on_the_probe_port(backend_of: BackendOf, owner: OwnerRef) -> None:
    network = exposure.ClusterNetwork(
        operator_namespace="ttsfleet-system",
        operator_pod_labels={"app.kubernetes.io/component": "operator"},
        probe_port=8080,
    )
    policy = rendering.render_network_policy(backend_of(networkPolicy={"enabled": True}), owner, network)
    assert policy is not None
    probes = policy["spec"]["ingress"][-1]
    assert probes == {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ttsfleet-system"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/component": "operator"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }


def test_dns_peers_and_ports_are_configurable(backend_of: BackendOf, owner: OwnerRef) -> None:
    network = exposure.ClusterNetwork(dns_peers=({"ipBlock": {"cidr": "10.0.0.10/32"}},), dns_ports=(53,))
    policy = rendering.render_network_policy(backend_of(networkPolicy={"enabled": True}), owner, network)
    assert policy is not None
    dns = policy["spec"]["egress"][0]
    assert dns == {
        "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
