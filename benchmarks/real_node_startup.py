"""How fast the local fleet's real-cluster stack comes up, as figures for docs/development.md.

`python -m benchmarks.real_node_startup [--replicas N]` starts the control plane, the node agent and the
Service proxy, then a Deployment of real gateways (before the emulator) in a `restricted` namespace, and
prints: control plane ready, the Node schedulable (agent registered, Ready, the not-ready taint lifted by
the node-lifecycle controller), Deployment create to all pods Ready, and to their endpoints in the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks import processes, waiting
from ttsfleet import contracts
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane, running_control_plane
from ttsfleet.devcluster.nodeagent import stack

NAMESPACE = "voice"
NODE = "bench-node"
DEADLINE_S = 60.0
POLL_S = 0.02  # fine enough for the startup figures it times


def _gateway(replicas: int) -> dict[str, Any]:
    labels = {"app": "gw"}
    secret_files = [
        ("key", contracts.DEEPGRAM_KEY_DIR, "gw-key"),
        ("tokens", contracts.TOKENS_DIR, "gw-tokens"),
    ]
    container = {
        "name": "gateway",
        "image": "ttsfleet/dataplane:bench",
        "args": [
            "ttsfleet",
            "dataplane",
            "--deepgram-key-file",
            contracts.DEEPGRAM_KEY_FILE,
            "--client-tokens-file",
            contracts.TOKENS_FILE,
        ],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": name, "mountPath": path} for name, path, _ in secret_files],
    }
    pod_security = {"runAsNonRoot": True, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gw"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": pod_security,
                    "containers": [container],
                    "volumes": [{"name": n, "secret": {"secretName": s}} for n, _, s in secret_files],
                },
            },
        },
    }


def _secret(name: str, key: str, value: str) -> dict[str, Any]:
    data = {key: base64.b64encode(value.encode()).decode()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data}


async def _measure(plane: ControlPlane, workdir: Path, upstream: str, replicas: int) -> dict[str, float]:
    async with (
        stack.running_node(plane, workdir / "node", NODE, upstream) as node,
        httpx.AsyncClient(base_url=plane.server, verify=plane.admin_tls(), timeout=10) as admin,
    ):

        async def schedulable() -> bool:
            response = await admin.get(f"/api/v1/nodes/{NODE}")
            body = response.json() if response.status_code == 200 else {}
            conditions = (body.get("status") or {}).get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            return ready and not (body.get("spec") or {}).get("taints")

        figures = {
            "node schedulable": await waiting.seconds(
                waiting.until(schedulable, DEADLINE_S, "the Node schedulable", POLL_S)
            )
        }
        base = f"/api/v1/namespaces/{NAMESPACE}"
        for path, body in (
            (f"{base}/secrets", _secret("gw-key", contracts.DEEPGRAM_KEY_NAME, processes.DEEPGRAM_KEY)),
            (f"{base}/secrets", _secret("gw-tokens", contracts.TOKENS_NAME, "bench-token\n")),
            (
                f"{base}/services",
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "gw"},
                    "spec": {"selector": {"app": "gw"}, "ports": [{"name": "http", "port": 8080}]},
                },
            ),
        ):
            (await admin.post(path, json=body)).raise_for_status()
        created = time.monotonic()
        deployments = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
        (await admin.post(deployments, json=_gateway(replicas))).raise_for_status()

        async def available() -> bool:
            status = (await admin.get(f"{deployments}/gw")).json().get("status") or {}
            return bool(status.get("availableReplicas") == replicas)

        async def proxied() -> bool:
            return len(node.proxy.endpoints(NAMESPACE, "gw", "http")) == replicas

        await waiting.until(available, DEADLINE_S, "the Deployment available", POLL_S)
        figures[f"Deployment create to {replicas} pod(s) Ready"] = time.monotonic() - created
        await waiting.until(proxied, DEADLINE_S, "the endpoints in the proxy", POLL_S)
        figures["Deployment create to endpoints in the proxy"] = time.monotonic() - created
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ttsfleet-node-bench-")))
        emulator = stack.enter_context(processes.emulator(workdir))
        plane = stack.enter_context(running_control_plane(workdir / "cluster"))
        provisioning.create_namespaces(plane, (NAMESPACE,))
        figures = {"control plane ready": plane.started_in_s}
        upstream = f"ws://127.0.0.1:{emulator.port}"
        figures.update(asyncio.run(_measure(plane, workdir, upstream, args.replicas)))
    for name, seconds in figures.items():
        print(f"{name:<45} {seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
