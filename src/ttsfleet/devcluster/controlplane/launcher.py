"""Run the control plane as local processes and wait until it answers.

etcd, then kube-apiserver (RBAC; the admission plugins of a hardened cluster; certificates and the
service-account keys made for this run), then kube-controller-manager (only the controllers a cluster
without kubelets can use, each with its own service-account credentials) and kube-scheduler. Every
process logs to its own file in the work directory; the context manager stops them all, newest first.
"""

from __future__ import annotations

import contextlib
import json
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ttsfleet.devcluster import ports
from ttsfleet.devcluster.controlplane import binaries, kubeconfigs, pki

START_DEADLINE_S = 120.0
STOP_GRACE_S = 10.0
SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
# On top of the defaults (NamespaceLifecycle, LimitRanger, ServiceAccount, PodSecurity, ResourceQuota,
# the webhooks and ValidatingAdmissionPolicy, …): what hardened clusters add.
ADMISSION_PLUGINS = (
    "NodeRestriction",
    "OwnerReferencesPermissionEnforcement",
    "PodSecurity",
    "ServiceAccount",
    "LimitRanger",
    "ResourceQuota",
)
CONTROLLERS = (
    "serviceaccount-token-controller",
    "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "horizontal-pod-autoscaler-controller",
    "disruption-controller",
    "pod-garbage-collector-controller",
    # Lifts the not-ready taint admission puts on a new Node once its agent reports Ready (and taints a
    # Node whose Lease lapses), as on any cluster with kubelets.
    "node-lifecycle-controller",
)


@dataclass
class ControlPlane:
    """A running control plane: where it answers and the credentials to reach it."""

    server: str
    workdir: Path
    programs: binaries.Programs
    credentials: pki.Pki
    admin_kubeconfig: Path
    version: str
    started_in_s: float = 0.0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def admin_client(self, timeout_s: float = 10.0) -> httpx.Client:
        """An HTTP client with the cluster-admin certificate (the launcher's and the tests' own)."""
        return httpx.Client(base_url=self.server, verify=self.admin_tls(), timeout=timeout_s, trust_env=False)

    def admin_tls(self) -> ssl.SSLContext:
        """TLS trusting only the cluster's CA, presenting the admin certificate."""
        return self.client_tls(self.credentials.admin)

    def client_tls(self, pair: pki.KeyPair) -> ssl.SSLContext:
        """TLS trusting only the cluster's CA, presenting `pair` (a node's, the proxy's, …)."""
        context = ssl.create_default_context(cafile=str(self.credentials.ca.certificate))
        context.load_cert_chain(str(pair.certificate), str(pair.key))
        return context

    def kubectl(self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None) -> str:
        """Run kubectl against the cluster (admin unless told), returning stdout; fails loudly."""
        done = subprocess.run(
            [str(self.programs.kubectl), "--kubeconfig", str(kubeconfig or self.admin_kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def log_of(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    @property
    def audit_log(self) -> Path:
        """kube-apiserver's audit log (JSON lines): every request of a ServiceAccount outside kube-system."""
        return self.workdir / "logs" / "audit.log"


def _start(plane: ControlPlane, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
    log = plane.log_of(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as stream:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            # Ctrl-C in a terminal reaches only the launcher, which then stops these in order.
            start_new_session=True,
        )
    plane.processes[name] = process
    return process


def _wait(plane: ControlPlane, name: str, answers: Callable[[], bool], deadline_s: float) -> None:
    """Poll `answers` until it holds; fail early when the process exits, with the end of its log."""
    process = plane.processes[name]
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = plane.log_of(name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.TransportError):
            if answers():
                return
        time.sleep(0.1)  # polling a process we cannot watch, bounded by the deadline
    raise RuntimeError(f"{name} was not ready within {deadline_s} s (see {plane.log_of(name)})")


def _get_ok(url: str, verify: ssl.SSLContext | bool = True) -> Callable[[], bool]:
    def answers() -> bool:
        with httpx.Client(timeout=2.0, trust_env=False, verify=verify) as http:
            return http.get(url).status_code == 200

    return answers


def _stop_all(plane: ControlPlane) -> None:
    # Newest first, each gone before the next is told: an apiserver whose etcd has already gone waits
    # out its whole grace period for it (10 s of every stop, measured).
    for process in reversed(list(plane.processes.values())):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


def _etcd_argv(plane: ControlPlane, client_port: int) -> list[str]:
    peer = f"http://127.0.0.1:{ports.free_port()}"
    client = f"http://127.0.0.1:{client_port}"
    return [
        str(plane.programs.etcd),
        "--name=default",
        f"--data-dir={plane.workdir / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync",  # a throw-away cluster: durability buys nothing and costs disk flushes
        "--log-level=warn",
    ]


# What the audit log keeps: the requests of workloads' ServiceAccounts (the operator's), at Metadata
# level; not the controllers' (kube-system) nor the admins', which would only bury them.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}


def _audit_argv(plane: ControlPlane) -> list[str]:
    policy = plane.workdir / "audit-policy.json"
    policy.write_text(json.dumps(AUDIT_POLICY))
    plane.audit_log.parent.mkdir(parents=True, exist_ok=True)
    return [f"--audit-policy-file={policy}", f"--audit-log-path={plane.audit_log}", "--audit-log-format=json"]


# The aggregator (aggregated APIs such as metrics.k8s.io) proxies requests as this client, naming the user
# in request headers; an aggregated server trusts those headers only from a certificate of this name.
FRONT_PROXY_CLIENT = "front-proxy-client"


def _aggregation_argv(keys: pki.Pki, proxy_client: pki.KeyPair) -> list[str]:
    # One CA signs everything in this throw-away cluster; the allowed name keeps any other client
    # certificate from speaking for a user through the headers.
    return [
        f"--requestheader-client-ca-file={keys.ca.certificate}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={proxy_client.certificate}",
        f"--proxy-client-key-file={proxy_client.key}",
    ]


def _apiserver_argv(plane: ControlPlane, port: int, etcd_port: int) -> list[str]:
    keys = plane.credentials
    proxy_client = pki.issue_client(keys, FRONT_PROXY_CLIENT, FRONT_PROXY_CLIENT)
    return [
        str(plane.programs.apiserver),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # The `kubernetes` Service's endpoints may not be a loopback address; nothing here dials it.
        "--endpoint-reconciler-type=none",
        f"--secure-port={port}",
        f"--cert-dir={plane.workdir / 'apiserver-certs'}",
        f"--tls-cert-file={keys.serving.certificate}",
        f"--tls-private-key-file={keys.serving.key}",
        f"--client-ca-file={keys.ca.certificate}",
        "--anonymous-auth=false",
        "--authorization-mode=Node,RBAC",
        f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
        "--allow-privileged=false",
        "--profiling=false",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={keys.service_account_public}",
        f"--service-account-signing-key-file={keys.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        *_audit_argv(plane),
        *_aggregation_argv(keys, proxy_client),
    ]


def _component_argv(
    plane: ControlPlane, program: Path, kubeconfig: Path, port: int, extra: Sequence[str]
) -> list[str]:
    return [
        str(program),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={plane.workdir / 'component-certs'}",
        *extra,
    ]


@contextlib.contextmanager
def running_control_plane(workdir: Path) -> Iterator[ControlPlane]:
    """Start a fresh cluster in `workdir` (state, certificates, kubeconfigs, logs); stop it on exit."""
    started = time.monotonic()
    programs = binaries.locate()
    credentials = pki.create(workdir / "pki")
    api_port = ports.free_port()
    server = f"https://127.0.0.1:{api_port}"
    plane = ControlPlane(
        server=server,
        workdir=workdir,
        programs=programs,
        credentials=credentials,
        admin_kubeconfig=workdir / "admin.kubeconfig",
        version=binaries.kubernetes_version(),
    )
    ca = credentials.ca.certificate
    kubeconfigs.write_certificate(
        plane.admin_kubeconfig, server=server, ca=ca, user="admin", pair=credentials.admin
    )
    try:
        etcd_port = ports.free_port()
        _start(plane, "etcd", _etcd_argv(plane, etcd_port))
        _wait(plane, "etcd", _get_ok(f"http://127.0.0.1:{etcd_port}/health"), START_DEADLINE_S)
        _start(plane, "kube-apiserver", _apiserver_argv(plane, api_port, etcd_port))
        ready = _get_ok(f"{server}/readyz", verify=plane.admin_tls())
        _wait(plane, "kube-apiserver", ready, START_DEADLINE_S)
        components: tuple[tuple[str, Path, pki.KeyPair, list[str]], ...] = (
            (
                "kube-controller-manager",
                programs.controller_manager,
                credentials.controller_manager,
                [
                    f"--controllers={','.join(CONTROLLERS)}",
                    "--use-service-account-credentials",
                    f"--root-ca-file={ca}",
                    f"--service-account-private-key-file={credentials.service_account_key}",
                ],
            ),
            ("kube-scheduler", programs.scheduler, credentials.scheduler, []),
        )
        for name, program, pair, extra in components:
            kubeconfig = kubeconfigs.write_certificate(
                workdir / f"{name}.kubeconfig", server=server, ca=ca, user=name, pair=pair
            )
            port = ports.free_port()
            _start(plane, name, _component_argv(plane, program, kubeconfig, port, extra))
            # Components serve a self-signed certificate made at start; /healthz needs no credentials.
            _wait(plane, name, _get_ok(f"https://127.0.0.1:{port}/healthz", verify=False), START_DEADLINE_S)
        plane.started_in_s = time.monotonic() - started
        yield plane
    finally:
        _stop_all(plane)
