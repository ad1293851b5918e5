"""How agents reach a backend and who else may: the Service, the NetworkPolicy, the ServiceMonitor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ttsfleet.operator import api
from ttsfleet.operator.rendering import config, meta

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
SPEAK_PATH = "/v1/speak"
_DEFAULT_PORTS = {"ws": 80, "wss": 443, "http": 80, "https": 443}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace since Kubernetes 1.22
# Where pods find DNS, by default: CoreDNS/kube-dns pods (label k8s-app: kube-dns, any namespace),
# OpenShift's resolvers (namespace openshift-dns, port 5353) and NodeLocal DNSCache, which answers on a
# link-local address from the host network, so only an ipBlock can match it.
DEFAULT_DNS_PEERS: tuple[dict[str, Any], ...] = (
    {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}},
    {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "openshift-dns"}}},
    {"ipBlock": {"cidr": "169.254.20.10/32"}},
)
DEFAULT_DNS_PORTS: tuple[int, ...] = (53, 5353)


@dataclass(frozen=True, slots=True)
class ClusterNetwork:
    """What a backend's NetworkPolicy must let through that the backend's spec cannot know.

    The operator's own pods (its namespace and pod labels, from the chart) probe each gateway's
    /statusz on `probe_port`; pods resolve names through `dns_peers` on `dns_ports`. Without an
    operator namespace (the local fleet, tests) no operator rule is rendered.
    """

    operator_namespace: str | None = None
    operator_pod_labels: Mapping[str, str] = field(default_factory=dict)
    probe_port: int = config.CONTAINER_PORT
    dns_peers: tuple[Mapping[str, Any], ...] = DEFAULT_DNS_PEERS
    dns_ports: tuple[int, ...] = DEFAULT_DNS_PORTS


# What a backend's NetworkPolicy admits when nothing is said about the cluster (tests, the local fleet).
NO_CLUSTER_FACTS = ClusterNetwork()


def render_service(backend: api.TTSBackend, owner: meta.OwnerRef) -> dict[str, Any]:
    """The Service `<name>`: the speak port (WebSocket and REST) and /metrics, on the pods' `http` port."""
    service = backend.spec.service
    body = meta.metadata(backend, owner)
    if service.annotations:
        body["annotations"] = dict(service.annotations)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": body,
        "spec": {
            "type": service.type.value,
            "selector": meta.selector_labels(backend),
            "ports": [{"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_endpoint(backend: api.TTSBackend, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> str:
    """The WebSocket URL a TEN agent speaks to: `ws://<name>.<namespace>.svc.<domain>:<port>/v1/speak`."""
    host = f"{backend.metadata.name}.{backend.metadata.namespace}.svc.{cluster_domain}"
    return f"ws://{host}:{backend.spec.service.port}{SPEAK_PATH}"


def upstream_ports(deepgram: api.DeepgramSpec) -> list[int]:
    """TCP ports the pods dial upstream: those of the WebSocket and (if set) REST URLs."""
    urls = [deepgram.url] if deepgram.rest_url is None else [deepgram.url, deepgram.rest_url]
    ports = set()
    for url in urls:
        parts = urlsplit(url)
        ports.add(parts.port or _DEFAULT_PORTS[parts.scheme])
    return sorted(ports)


def _peer(peer: api.PeerSpec) -> dict[str, Any]:
    # Both selectors always: an empty namespaceSelector means every namespace, not just this one.
    return {
        "namespaceSelector": _selector(peer.namespace_labels),
        "podSelector": _selector(peer.pod_labels),
    }


def _selector(match_labels: dict[str, str]) -> dict[str, Any]:
    return {"matchLabels": dict(match_labels)} if match_labels else {}


def _http_port() -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": config.CONTAINER_PORT}]


def _operator_ingress(network: ClusterNetwork) -> list[dict[str, Any]]:
    if network.operator_namespace is None:
        return []
    peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: network.operator_namespace}},
        "podSelector": _selector(dict(network.operator_pod_labels)),
    }
    return [{"from": [peer], "ports": [{"protocol": "TCP", "port": network.probe_port}]}]


def _dns_egress(network: ClusterNetwork) -> dict[str, Any]:
    return {
        "to": [dict(peer) for peer in network.dns_peers],
        "ports": [
            {"protocol": protocol, "port": port} for port in network.dns_ports for protocol in ("UDP", "TCP")
        ],
    }


def render_network_policy(
    backend: api.TTSBackend, owner: meta.OwnerRef, network: ClusterNetwork = NO_CLUSTER_FACTS
) -> dict[str, Any] | None:
    """Ingress from agents, Prometheus and the operator's probes; egress to DNS and Deepgram (None: off)."""
    policy = backend.spec.network_policy
    if not policy.enabled:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta.metadata(backend, owner),
        "spec": {
            "podSelector": {"matchLabels": meta.selector_labels(backend)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [_peer(policy.agents)], "ports": _http_port()},
                # /metrics is served on the same port as /v1/speak.
                {"from": [_peer(policy.prometheus)], "ports": _http_port()},
                # The operator reads /statusz (fleet status, key rollout) from every pod.
                *_operator_ingress(network),
            ],
            "egress": [
                _dns_egress(network),
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in policy.upstream_cidrs],
                    "ports": [
                        {"protocol": "TCP", "port": port} for port in upstream_ports(backend.spec.deepgram)
                    ],
                },
            ],
        },
    }


def render_service_monitor(backend: api.TTSBackend, owner: meta.OwnerRef) -> dict[str, Any] | None:
    """A monitoring.coreos.com/v1 ServiceMonitor scraping /metrics; None unless enabled."""
    monitor = backend.spec.monitoring.service_monitor
    if not monitor.enabled:
        return None
    body = meta.metadata(backend, owner)
    body["labels"] = {**dict(monitor.labels), **body["labels"]}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": body,
        "spec": {
            "selector": {"matchLabels": meta.selector_labels(backend)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": monitor.interval}],
        },
    }
