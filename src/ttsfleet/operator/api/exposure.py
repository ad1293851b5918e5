"""How a TTSBackend is reached and watched: its Service, its NetworkPolicy, its ServiceMonitor."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, StringConstraints

from ttsfleet.operator.api.base import ApiModel, group

LabelValue = Annotated[str, StringConstraints(max_length=63)]
Labels = dict[str, LabelValue]
CIDR_PATTERN = r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"


class ServiceType(enum.StrEnum):
    """Kubernetes Service types the backend may be exposed through."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceSpec(ApiModel):
    """The Service agents connect to: `<name>.<namespace>.svc`."""

    port: int = Field(
        default=8080, ge=1, le=65535, description="Service port serving /v1/speak (WS and REST)."
    )
    type: ServiceType = Field(
        default=ServiceType.CLUSTER_IP, description="ClusterIP, NodePort or LoadBalancer."
    )
    annotations: dict[str, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=64,
        description="Annotations for the Service (load-balancer settings…).",
    )


class PeerSpec(ApiModel):
    """Pods allowed in: those matching podLabels in namespaces matching namespaceLabels."""

    namespace_labels: Labels = Field(
        default_factory=dict,
        max_length=16,
        description="Labels a peer namespace must carry; empty means every namespace.",
    )
    pod_labels: Labels = Field(
        default_factory=dict,
        max_length=16,
        description="Labels a peer pod must carry; empty means every pod.",
    )


def _agents() -> PeerSpec:
    return PeerSpec(namespace_labels={"ttsfleet.io/tts-clients": "true"})


def _prometheus() -> PeerSpec:
    return PeerSpec(pod_labels={"app.kubernetes.io/name": "prometheus"})


class NetworkPolicySpec(ApiModel):
    """A NetworkPolicy around the pods: only agents and Prometheus in; only DNS and Deepgram out."""

    enabled: bool = Field(
        default=False,
        description="Render the NetworkPolicy; off by default because it cuts off unlabelled agents.",
    )
    agents: PeerSpec = Field(
        default_factory=_agents,
        description=(
            "Clients allowed to open sessions; default: pods in namespaces labelled "
            "ttsfleet.io/tts-clients=true."
        ),
        json_schema_extra={"default": {"namespaceLabels": {"ttsfleet.io/tts-clients": "true"}}},
    )
    prometheus: PeerSpec = Field(
        default_factory=_prometheus,
        description="Who may read /metrics; default: pods labelled app.kubernetes.io/name=prometheus.",
        json_schema_extra={"default": {"podLabels": {"app.kubernetes.io/name": "prometheus"}}},
    )
    upstream_cidrs: list[Annotated[str, StringConstraints(pattern=CIDR_PATTERN, max_length=64)]] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        alias="upstreamCIDRs",
        min_length=1,
        max_length=64,
        description="Address ranges Deepgram is reached in (its port comes from deepgram.url).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class ServiceMonitorSpec(ApiModel):
    """A Prometheus Operator ServiceMonitor for the gateway's /metrics."""

    enabled: bool = Field(
        default=False, description="Render a ServiceMonitor (needs the Prometheus Operator CRDs)."
    )
    interval: str = Field(
        default="30s", pattern=DURATION_PATTERN, max_length=16, description="Scrape interval, e.g. 30s."
    )
    labels: Labels = Field(
        default_factory=dict, max_length=16, description="Extra labels Prometheus selects ServiceMonitors by."
    )


class MonitoringSpec(ApiModel):
    """Metrics collection."""

    service_monitor: ServiceMonitorSpec = group(ServiceMonitorSpec, "The ServiceMonitor, when enabled.")
