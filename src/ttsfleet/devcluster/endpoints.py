"""The objects the runner writes back: Pods (as the kubelet reports them) and EndpointSlices.

Pure functions. Every pod runs on 127.0.0.1 with its own port, so the real port is published in the
`devcluster.ttsfleet.io/port` annotation (the operator's /statusz prober reads it) and each ready pod
gets its own EndpointSlice, because a slice's ports are shared by all its endpoints.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from ttsfleet.devcluster import rollout

PORT_ANNOTATION = "devcluster.ttsfleet.io/port"
# Held by the runner until the pod's process has exited, so a deleted Pod stays visible while it drains.
PROCESS_FINALIZER = "devcluster.ttsfleet.io/process"
POD_IP = "127.0.0.1"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "devcluster.ttsfleet.io"


def _stamp(now: datetime.datetime) -> str:
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_body(
    deployment: Mapping[str, Any], name: str, template_hash: str, port: int, now: datetime.datetime
) -> dict[str, Any]:
    """A Pod for one replica of a Deployment, owned by it (there are no ReplicaSets here)."""
    template = deployment["spec"]["template"]
    meta = deployment["metadata"]
    template_meta = template.get("metadata") or {}
    labels = {**(template_meta.get("labels") or {}), rollout.TEMPLATE_HASH_LABEL: template_hash}
    annotations = {**(template_meta.get("annotations") or {}), PORT_ANNOTATION: str(port)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "finalizers": [PROCESS_FINALIZER],
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {**template.get("spec", {}), "nodeName": "devcluster"},
        "status": pod_status(ready=False, started=False, now=now, previous=None),
    }


def pod_status(
    *, ready: bool, started: bool, now: datetime.datetime, previous: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The status the kubelet would report: Running on 127.0.0.1, Ready as the readiness probe says."""
    stamp = _stamp(now)
    before = {c.get("type"): c for c in (previous or {}).get("conditions") or []}

    def condition(kind: str, value: bool) -> dict[str, Any]:
        status = "True" if value else "False"
        old = before.get(kind)
        since = old.get("lastTransitionTime", stamp) if old and old.get("status") == status else stamp
        return {"type": kind, "status": status, "lastTransitionTime": since}

    return {
        "phase": "Running" if started else "Pending",
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "hostIP": POD_IP,
        "startTime": (previous or {}).get("startTime", stamp),
        "conditions": [
            condition("PodScheduled", True),
            condition("Initialized", True),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ],
    }


def slice_name(service: str, pod: str) -> str:
    """The EndpointSlice holding one pod's endpoint for one Service."""
    return f"{service}-{pod.rsplit('-', 1)[-1]}"[:63]


def endpoint_slice(
    service: Mapping[str, Any], pod: Mapping[str, Any], port: int, *, ready: bool, terminating: bool
) -> dict[str, Any]:
    """An EndpointSlice with one endpoint: the pod at 127.0.0.1 on its real port."""
    svc_meta, pod_meta = service["metadata"], pod["metadata"]
    ports = (service.get("spec") or {}).get("ports") or [{}]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(svc_meta["name"], pod_meta["name"]),
            "namespace": svc_meta["namespace"],
            "labels": {SERVICE_NAME_LABEL: svc_meta["name"], MANAGED_BY_LABEL: MANAGED_BY},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": svc_meta["name"],
                    "uid": svc_meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [POD_IP],
                "conditions": {
                    "ready": ready and not terminating,
                    "serving": ready,
                    "terminating": terminating,
                },
                "nodeName": "devcluster",
                "targetRef": {
                    "kind": "Pod",
                    "namespace": pod_meta["namespace"],
                    "name": pod_meta["name"],
                    "uid": pod_meta.get("uid", ""),
                },
            }
        ],
        "ports": [{"name": ports[0].get("name", ""), "port": port, "protocol": "TCP"}],
    }


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service's equality selector matches these labels (an empty or missing selector matches none)."""
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


def container_port(container: Mapping[str, Any], port: int | str) -> int | None:
    """A probe's or Service's port, by name or number, as the container declares it."""
    if isinstance(port, int):
        return port
    declared: Sequence[Mapping[str, Any]] = container.get("ports") or ()
    for entry in declared:
        if entry.get("name") == port:
            return int(entry["containerPort"])
    return int(port) if str(port).isdigit() else None
