"""Run metrics-server against a running control plane and register it as `v1beta1.metrics.k8s.io`.

The process listens on a loopback port with a serving certificate of the cluster's CA for
`metrics-server.kube-system.svc` (the name the aggregator checks). The aggregator reaches it through a
Service of type ExternalName (`localhost`): its resolver dials an ExternalName Service's name at the
APIService's port, so no ClusterIP routing is needed. It authenticates to the apiserver and to the node
agents' kubelet endpoints with its own client certificate, as the user the RBAC below grants.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ttsfleet.devcluster import ports
from ttsfleet.devcluster.controlplane import kubeconfigs, pki
from ttsfleet.devcluster.controlplane.launcher import ControlPlane
from ttsfleet.devcluster.metricsserver import build

NAMESPACE, NAME = "kube-system", "metrics-server"
USER = "system:metrics-server"
API_SERVICE = "v1beta1.metrics.k8s.io"
# metrics-server's shortest scrape interval; the HPA's CPU figure is a rate over two scrapes.
METRIC_RESOLUTION_S = 10
AVAILABLE_DEADLINE_S = 90.0
STOP_GRACE_S = 10.0


@dataclass
class MetricsServer:
    """A running metrics-server: its process and where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path


def manifests(ca_bundle: bytes, port: int) -> list[dict[str, Any]]:
    """RBAC for metrics-server's user, the ExternalName Service and the APIService (pure)."""
    reader = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": USER},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": USER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": USER},
            "subjects": [reader],
        },
        # Delegated authentication and authorization of the requests the aggregator forwards.
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{USER}:auth-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [reader],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{NAME}-auth-reader", "namespace": NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": [reader],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE},
            "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"port": port}]},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"namespace": NAMESPACE, "name": NAME, "port": port},
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def argv(
    program: Path, port: int, kubeconfig: Path, serving: pki.KeyPair, client: pki.KeyPair, ca: Path
) -> list[str]:
    return [
        str(program),
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={serving.certificate}",
        f"--tls-private-key-file={serving.key}",
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--kubelet-certificate-authority={ca}",
        f"--kubelet-client-certificate={client.certificate}",
        f"--kubelet-client-key={client.key}",
        f"--metric-resolution={METRIC_RESOLUTION_S}s",
        # Must be shorter than the resolution; a local endpoint answers in milliseconds.
        "--kubelet-request-timeout=5s",
    ]


def is_available(plane: ControlPlane) -> bool:
    with plane.admin_client() as http:
        response = http.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{API_SERVICE}")
    if response.status_code != 200:
        return False
    conditions = (response.json().get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


@contextlib.contextmanager
def running_metrics_server(plane: ControlPlane, workdir: Path) -> Iterator[MetricsServer]:
    """Start metrics-server, register its APIService, wait until the aggregator reports it Available."""
    program = build.locate()
    workdir.mkdir(parents=True, exist_ok=True)
    credentials = plane.credentials
    service_name = f"{NAME}.{NAMESPACE}.svc"
    serving = pki.issue_serving(credentials, NAME, NAME, (service_name, "localhost"), ("127.0.0.1",))
    client = pki.issue_client(credentials, f"{NAME}-client", USER)
    kubeconfig = kubeconfigs.write_certificate(
        workdir / f"{NAME}.kubeconfig",
        server=plane.server,
        ca=credentials.ca.certificate,
        user=USER,
        pair=client,
    )
    port = ports.free_port()
    plane.kubectl(
        "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests(credentials.ca.certificate.read_bytes(), port))
    )
    log = workdir / f"{NAME}.log"
    with log.open("ab") as stream:
        process = subprocess.Popen(
            argv(program, port, kubeconfig, serving, client, credentials.ca.certificate),
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + AVAILABLE_DEADLINE_S
        while not is_available(plane):
            if process.poll() is not None:
                raise RuntimeError(
                    f"metrics-server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{API_SERVICE} not Available within {AVAILABLE_DEADLINE_S} s (see {log})")
            time.sleep(0.5)  # the aggregator's availability check has no watchable signal here
        yield MetricsServer(process, port, log)
    finally:
        process.terminate()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
