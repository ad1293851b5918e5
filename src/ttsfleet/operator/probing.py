"""Asking gateway pods how they are: `GET /statusz` on each ready pod (docs/contracts.md).

Where a pod is reached is a seam (`StatuszUrl`): in a cluster it is the pod IP and the gateway port;
tests and the local fleet point it at local processes. On the local fleet's real control plane pod IPs
are not routable: its node agent publishes a pod-network table (`pod_network_statusz`) instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger(__name__)
StatuszUrl = Callable[[Mapping[str, Any]], str | None]


def pod_ip_statusz(port: int, port_annotation: str | None = None) -> StatuszUrl:
    """`http://<podIP>:<port>/statusz`, or None for a pod without an IP yet.

    With `port_annotation`, a pod carrying that annotation is asked on the port it names instead: the
    local fleet runs every pod on 127.0.0.1 with a port of its own.
    """

    def url_of(pod: Mapping[str, Any]) -> str | None:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            return None
        host = f"[{ip}]" if ":" in ip else ip
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        pod_port = annotations.get(port_annotation, port) if port_annotation else port
        return f"http://{host}:{pod_port}/statusz"

    return url_of


@dataclass
class PodNetworkTable:
    """A pod-network table file: `{"<pod IP>": {"<container port>": <loopback port>}}`, JSON.

    The local fleet's node agent maps each pod IP and declared port to the loopback port its process
    listens on (what a CNI plugin would route) and replaces the file atomically on every change; the
    file is re-read when its modification time or size changes. Dev-only: unset in production.
    """

    path: Path
    _seen: tuple[int, int] | None = None
    _table: dict[str, dict[str, int]] = field(default_factory=dict)

    def local_port(self, pod_ip: str, port: int) -> int | None:
        """The loopback port behind `pod_ip:port`, or None when the table does not (yet) list it."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            try:
                loaded = json.loads(self.path.read_text())
            except (OSError, ValueError):
                return None  # replaced atomically, so this is a missing or foreign file: try next time
            self._table = loaded if isinstance(loaded, dict) else {}
            self._seen = (stat.st_mtime_ns, stat.st_size)
        local = (self._table.get(pod_ip) or {}).get(str(port))
        return local if isinstance(local, int) else None


def pod_network_statusz(port: int, table_file: Path) -> StatuszUrl:
    """`http://127.0.0.1:<local port>/statusz` for the pod's IP and `port`, as the table maps them."""
    table = PodNetworkTable(table_file)

    def url_of(pod: Mapping[str, Any]) -> str | None:
        ip = (pod.get("status") or {}).get("podIP")
        local = table.local_port(ip, port) if ip else None
        return f"http://127.0.0.1:{local}/statusz" if local is not None else None

    return url_of


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    """The pod is not terminating and its Ready condition is True."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_view(pod: Mapping[str, Any], port_annotation: str | None = None) -> dict[str, Any]:
    """The parts of a pod that probing reads: name, deletion, IP, Ready, the port annotation.

    A pod index keeps these rather than whole pods (a pod object is several kilobytes).
    """
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    annotations = metadata.get("annotations") or {}
    kept = {port_annotation: annotations[port_annotation]} if port_annotation in annotations else {}
    view_metadata = {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "annotations": kept,
    }
    if metadata.get("deletionTimestamp"):
        view_metadata["deletionTimestamp"] = metadata["deletionTimestamp"]
    ready = [dict(c) for c in status.get("conditions") or () if c.get("type") == "Ready"]
    return {"metadata": view_metadata, "status": {"podIP": status.get("podIP"), "conditions": ready}}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The reports gathered (parsed JSON, in pod-name order) and how many pods failed to answer."""

    reports: tuple[dict[str, Any], ...]
    failures: int


class Prober:
    """Fetches /statusz from pods concurrently with one shared HTTP client."""

    def __init__(self, url_of: StatuszUrl, timeout_s: float) -> None:
        self._url_of = url_of
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def probe(self, pods: Sequence[Mapping[str, Any]]) -> ProbeResult:
        """Reports of the ready pods; a pod that does not answer with JSON counts as a failure."""
        ready = sorted((p for p in pods if is_pod_ready(p)), key=lambda p: str(p["metadata"]["name"]))
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._fetch(pod), name=f"statusz {pod['metadata']['name']}")
                for pod in ready
            ]
        answers = [task.result() for task in tasks]
        reports = tuple(answer for answer in answers if answer is not None)
        return ProbeResult(reports=reports, failures=len(answers) - len(reports))

    async def _fetch(self, pod: Mapping[str, Any]) -> dict[str, Any] | None:
        url = self._url_of(pod)
        if url is None:
            return None
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            report = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.debug("statusz of %s failed: %s", pod["metadata"]["name"], type(exc).__name__)
            return None
        return report if isinstance(report, dict) else None
