"""Operator settings: one frozen root built once at start, and the kopf settings derived from it.

Every field states its unit and why its default. kopf's own defaults suit a laptop; the ones changed
here harden it for a cluster (watch timeouts, worker limits, backoff, Event posting).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import kopf
from pydantic import BaseModel, Field

from ttsfleet.operator import errors
from ttsfleet.operator.rendering import exposure, meta


class OperatorSettings(BaseModel, frozen=True):
    """What `ttsfleet operator` is told on its command line."""

    namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces to serve; empty serves the whole cluster (needs the ClusterRole)."
    )
    probe_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="How often each backend's pods are asked for /statusz; fleet status lags by this much.",
    )
    probe_timeout_s: float = Field(
        default=2.0, gt=0, description="Per-pod /statusz budget; a slower pod counts as a probe failure."
    )
    statusz_port: int = Field(default=8080, ge=1, le=65535, description="The gateway port serving /statusz.")
    statusz_port_annotation: str | None = Field(
        default=None,
        description="A pod annotation naming the /statusz port instead (the local fleet's pods share an IP).",
    )
    pod_network_file: Path | None = Field(
        default=None,
        description=(
            "Dev-only: a pod-network table (pod IP and port to a loopback port) the local fleet's node"
            " agent publishes, for pod IPs this machine cannot route; unset, the pod IP is dialled."
        ),
    )
    metrics_port: int = Field(
        default=9090, ge=0, le=65535, description="Port of the operator's /metrics; 0 turns it off."
    )
    liveness_endpoint: str | None = Field(
        default=None, description="kopf's health endpoint, e.g. http://0.0.0.0:8080/healthz (off when unset)."
    )
    cluster_domain: str = Field(default="cluster.local", description="DNS suffix in status.endpoint.")
    api_server: str | None = Field(
        default=None,
        description="An API URL used without credentials (the embedded API); else in-cluster/kubeconfig.",
    )
    kubeconfig: Path | None = Field(
        default=None,
        description="A kubeconfig to log in with (a ServiceAccount's token); else in-cluster/$KUBECONFIG.",
    )
    rbac_recheck_s: float = Field(
        default=30.0,
        gt=0,
        description="While RBAC refuses a list or watch the operator needs, how often it asks again.",
    )
    api_read_timeout_s: float = Field(
        default=30.0, gt=0, description="Per-request read timeout of the operator's own API calls."
    )
    api_max_in_flight: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="The operator's own API requests in flight at once; more wait their turn in order.",
    )
    max_concurrent_reconciles: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Reconciles running at once; the rest wait their turn (bounds the peak memory).",
    )
    watch_server_timeout_s: int = Field(
        default=300, ge=10, description="Asked of the API per watch; streams end and resume this often."
    )
    watch_client_timeout_s: float = Field(
        default=330.0,
        gt=0,
        description="Cut a watch the server forgot to end (server timeout + margin): silent stalls heal.",
    )
    worker_limit: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Objects of one kind handled at once; None is unbounded. kopf holds a worker per object while"
            " it waits for every index to fill at start, so a limit below the number of TTSBackends (or"
            " labelled Secrets) deadlocks a restart: measured with 200 backends and a limit of 50."
        ),
    )
    peering_name: str | None = Field(
        default=None,
        description="kopf peering object guarding against a second operator; None runs standalone.",
    )
    priority: int = Field(default=100, description="This operator's kopf peering priority (higher wins).")
    log_level: str = Field(default="INFO", description="Log level of the operator process.")
    operator_namespace: str | None = Field(
        default=None,
        description="The operator's namespace: backends' NetworkPolicies admit its /statusz probes from it.",
    )
    operator_pod_labels: dict[str, str] = Field(
        default_factory=dict, description="The operator pods' labels, for the same NetworkPolicy rule."
    )
    dns_peers: tuple[dict[str, Any], ...] = Field(
        default=exposure.DEFAULT_DNS_PEERS,
        description="NetworkPolicy peers serving DNS to pods (kube-dns, OpenShift DNS, NodeLocal DNSCache).",
    )
    dns_ports: tuple[int, ...] = Field(
        default=exposure.DEFAULT_DNS_PORTS, description="DNS ports those peers answer on (UDP and TCP)."
    )
    max_retry_delay_s: float = Field(
        default=errors.MAX_RETRY_AFTER_S,
        gt=0,
        description="Longest wait before retrying a failed reconcile (429 Retry-After is clamped to it).",
    )

    @property
    def cluster_network(self) -> exposure.ClusterNetwork:
        """What backends' NetworkPolicies must admit besides what their spec says."""
        return exposure.ClusterNetwork(
            operator_namespace=self.operator_namespace,
            operator_pod_labels=dict(self.operator_pod_labels),
            probe_port=self.statusz_port,
            dns_peers=self.dns_peers,
            dns_ports=self.dns_ports,
        )


# How often a deletion re-checks whether a running probe tick has finished.
TIMER_STOP_POLL_S = 1.0
# kopf re-tries failed watch connections after these many seconds; the last repeats.
RECONNECT_BACKOFF_S = 1.0
# API errors kopf itself meets (watches, patches, Events) are retried this many times with these delays.
NETWORK_ERROR_BACKOFFS_S = (1.0, 2.0, 5.0, 10.0)
PROGRESS_PREFIX = "kopf.ttsfleet.io"
# The operator's watches are filtered by the labels in rendering.meta (watched Secrets, managed children,
# gateway pods), so the API never sends the cluster's other Secrets, Deployments or pods.


def configure_kopf(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    """Harden kopf's settings in place (called from the startup handler)."""
    kopf_settings.watching.server_timeout = settings.watch_server_timeout_s
    kopf_settings.watching.client_timeout = settings.watch_client_timeout_s
    kopf_settings.watching.connect_timeout = 10
    kopf_settings.watching.reconnect_backoff = RECONNECT_BACKOFF_S
    kopf_settings.queueing.worker_limit = settings.worker_limit
    kopf_settings.networking.request_timeout = settings.api_read_timeout_s
    kopf_settings.networking.connect_timeout = 10
    kopf_settings.networking.error_backoffs = NETWORK_ERROR_BACKOFFS_S
    kopf_settings.networking.enforce_retry_after = True
    kopf_settings.execution.default_backoff = 10
    kopf_settings.watching.label_selectors["secrets"] = meta.WATCHED_SECRETS
    kopf_settings.watching.label_selectors["apps", "deployments"] = meta.MANAGED_CHILDREN
    kopf_settings.watching.label_selectors["pods"] = meta.GATEWAY_PODS
    # With named namespaces there is nothing to discover: no cluster-wide namespace (or CRD) scans,
    # so a namespaced install needs no cluster-scoped read grants for them.
    kopf_settings.scanning.disabled = bool(settings.namespaces)
    # Only warnings become Events automatically; the operator posts its own domain Events, so routine
    # "handler succeeded" lines do not write to the API on every reconcile.
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.posting.reporting_component = "ttsfleet-operator"
    # A deletion waits for the probe timer to stop (kopf's finalizer). A tick in flight then (API calls,
    # /statusz requests) is not an "instant exit", and kopf would look again only after its default
    # 60 s: a deleted backend, and a namespace being deleted, would hang that long.
    kopf_settings.background.cancellation_polling = TIMER_STOP_POLL_S
    # Our own handlers need no finalizer (children go by ownerReferences); state lives in annotations.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PROGRESS_PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PROGRESS_PREFIX, key="last-handled-configuration"
    )
