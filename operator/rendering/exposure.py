"""How agents reach a backend and who else may: the Service, the NetworkPolicy, the ServiceMonitor."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ttsfleet.operator import api
from ttsfleet.operator.rendering import config, meta

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
SPEAK_PATH = "/v1/speak"
_DEFAULT_PORTS = {"ws": 80, "wss": 443, "http": 80, "https": 443}
DNS_SELECTOR = {"k8s-app": "kube-dns"}


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


def render_network_policy(backend: api.TTSBackend, owner: meta.OwnerRef) -> dict[str, Any] | None:
    """Ingress from agents and Prometheus on the pods' port; egress to DNS and Deepgram; None when off."""
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
            ],
            "egress": [
                {
                    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": dict(DNS_SELECTOR)}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
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
