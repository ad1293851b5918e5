"""What the node agent writes to the API, as pure functions: its Node, its Lease, its pods' status.

Pod IPs: EndpointSlice validation refuses loopback addresses (127.0.0.0/8), so a pod cannot be published
at the 127.0.0.1 it really listens on. Each pod gets an address from the node's podCIDR (`PodAddresses`),
which is what the EndpointSlice controller publishes; the agent keeps the table from that address and
the container's declared ports to the loopback port its process listens on — the port mapping a CNI
would do — and the Service proxy dials through it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
MAX_PODS = 110
LOOPBACK = "127.0.0.1"


def stamp(now: datetime.datetime) -> str:
    """An RFC 3339 time in seconds, as Kubernetes writes `metav1.Time`."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_stamp(now: datetime.datetime) -> str:
    """`metav1.MicroTime`, what a Lease's renewTime holds."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def node_body(name: str, pod_cidr: str) -> dict[str, Any]:
    """The Node as the agent registers it (the scheduler places pods on it once it exists)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                    platform.machine(), platform.machine()
                ),
            },
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
    }


def node_status(name: str, now: datetime.datetime, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ready, with this machine's CPUs and memory as capacity (all of it allocatable)."""
    when = stamp(now)
    ready_before = next(
        (c for c in (previous or {}).get("conditions") or () if c.get("type") == "Ready"), None
    )
    since = ready_before.get("lastTransitionTime", when) if ready_before else when
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": str(_memory_bytes()), "pods": str(MAX_PODS)}
    return {
        "capacity": capacity,
        "allocatable": capacity,
        "addresses": [{"type": "InternalIP", "address": LOOPBACK}, {"type": "Hostname", "address": name}],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "NodeAgentReady",
                "message": "the node agent runs pods as local processes",
                "lastHeartbeatTime": when,
                "lastTransitionTime": since,
            }
        ],
        "nodeInfo": {
            "operatingSystem": "linux",
            "architecture": node_body(name, "")["metadata"]["labels"]["kubernetes.io/arch"],
            "kernelVersion": platform.release(),
            "osImage": platform.platform(),
            "containerRuntimeVersion": "ttsfleet-process://1",
            "kubeletVersion": "",
            "kubeProxyVersion": "",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


def lease_body(name: str, now: datetime.datetime) -> dict[str, Any]:
    """The node's heartbeat Lease in kube-node-lease."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "renewTime": micro_stamp(now),
        },
    }


@dataclass
class PodAddresses:
    """Pod IPs handed out from the node's podCIDR, and where each (pod IP, container port) really listens."""

    pod_cidr: str
    _free: list[str] = field(default_factory=list)
    _ports: dict[str, dict[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hosts = list(ipaddress.ip_network(self.pod_cidr).hosts())
        self._free = [str(address) for address in reversed(hosts[1:])]  # the first is the node's gateway

    def assign(self, container_ports: Iterable[int], local_port: int) -> str:
        """A fresh pod IP whose declared ports all lead to `local_port` on loopback."""
        if not self._free:
            raise RuntimeError(f"pod CIDR {self.pod_cidr} is exhausted")
        address = self._free.pop()
        self._ports[address] = dict.fromkeys(container_ports, local_port)
        return address

    def release(self, address: str) -> None:
        """The pod is gone: its address may be handed out again."""
        if self._ports.pop(address, None) is not None:
            self._free.append(address)

    def table(self) -> dict[str, dict[str, int]]:
        """Every pod IP's ports and their loopback ports, as the pod-network table file holds them
        (`ttsfleet.operator.probing.PodNetworkTable`: JSON object keys are strings)."""
        return {
            address: {str(port): local for port, local in sorted(ports.items())}
            for address, ports in sorted(self._ports.items())
        }

    def local(self, address: str, port: int) -> tuple[str, int] | None:
        """Where a connection to `address:port` goes on this machine; None for an unknown endpoint."""
        local_port = self._ports.get(address, {}).get(port)
        return (LOOPBACK, local_port) if local_port is not None else None


def container_ports(container: Mapping[str, Any]) -> list[int]:
    """The TCP ports a container declares."""
    return [
        int(entry["containerPort"])
        for entry in container.get("ports") or ()
        if entry.get("protocol", "TCP") == "TCP" and "containerPort" in entry
    ]


def pod_status(
    *,
    container: Mapping[str, Any],
    pod_ip: str | None,
    running: bool,
    ready: bool,
    restarts: int,
    now: datetime.datetime,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The status the kubelet reports: phase, conditions (Ready from the readiness probe), IPs and the
    container's state with its restart count. Transition times stay put while a condition holds."""
    when = stamp(now)
    previous = previous or {}
    before = {c.get("type"): c for c in previous.get("conditions") or []}

    def condition(kind: str, value: bool) -> dict[str, Any]:
        status = "True" if value else "False"
        old = before.get(kind)
        since = old.get("lastTransitionTime", when) if old and old.get("status") == status else when
        return {"type": kind, "status": status, "lastTransitionTime": since}

    old_container: Mapping[str, Any] = next(iter(previous.get("containerStatuses") or ()), {})
    started_at = ((old_container.get("state") or {}).get("running") or {}).get("startedAt", when)
    fresh_start = restarts != old_container.get("restartCount", 0)
    state = (
        {"running": {"startedAt": when if fresh_start else started_at}}
        if running
        else {"waiting": {"reason": "ContainerCreating"}}
    )
    status: dict[str, Any] = {
        "phase": "Running" if running else "Pending",
        "hostIP": LOOPBACK,
        "hostIPs": [{"ip": LOOPBACK}],
        "startTime": previous.get("startTime", when),
        "conditions": [
            condition("PodScheduled", True),
            condition("Initialized", True),
            condition("ContainersReady", ready),
            condition("Ready", ready),
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "containerID": f"process://{container['name']}",
                "ready": ready,
                "started": running,
                "restartCount": restarts,
                "state": state,
            }
        ],
    }
    if pod_ip is not None:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
