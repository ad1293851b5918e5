"""kubectl 1.32 round trips against the embedded API (`--validate=false`: there is no OpenAPI document)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.devcluster.conftest import widget_crd
from tests.support.tools import require_tool
from ttsfleet.devcluster.apiserver import ApiServer, write_kubeconfig

Kubectl = Callable[..., Awaitable[str]]

MANIFEST = """\
apiVersion: v1
kind: Secret
metadata: {name: deepgram, labels: {app: tts}}
stringData: {key: not-a-real-key}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gateway, labels: {app: tts}}
data: {config.yaml: "pool: 2"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gateway, labels: {app: tts}}
spec:
  replicas: 1
  selector: {matchLabels: {app: tts}}
  template:
    metadata: {labels: {app: tts}}
    spec:
      containers:
      - {name: gateway, image: "ttsfleet/dataplane:dev", ports: [{containerPort: 8080}]}
"""


@pytest.fixture
def kubectl(apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    """Run kubectl against the API without blocking the loop the API runs on; fail on a non-zero exit."""
    config = write_kubeconfig(tmp_path / "kubeconfig", apiserver.base_url)
    env = dict(os.environ, KUBECONFIG=str(config), HOME=str(tmp_path))
    binary = str(require_tool("kubectl"))

    async def run(*args: str, stdin: str | None = None) -> str:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--cache-dir={tmp_path / 'cache'}",
            *args,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await process.communicate(stdin.encode() if stdin else None)
        assert process.returncode == 0, f"kubectl {' '.join(args)} failed: {err.decode()}"
        return out.decode()

    return run


async def test_apply_get_scale_delete_round_trip(kubectl: Kubectl, apiserver: ApiServer) -> None:
    applied = await kubectl("apply", "--validate=false", "-f", "-", stdin=MANIFEST)
    assert "deployment.apps/gateway created" in applied

    deployment = json.loads(await kubectl("get", "deployment", "gateway", "-o", "json"))
    assert deployment["spec"]["replicas"] == 1 and deployment["metadata"]["generation"] == 1
    listed = json.loads(await kubectl("get", "secrets,configmaps", "-l", "app=tts", "-o", "json"))
    assert sorted(item["kind"] for item in listed["items"]) == ["ConfigMap", "Secret"]

    await kubectl("scale", "deployment/gateway", "--replicas=3")
    stored = apiserver.get_object("apps/v1/deployments", "default", "gateway")
    assert stored is not None and stored["spec"]["replicas"] == 3

    # Re-applying changes the image only; the strategic merge keeps the container's ports.
    reapplied = await kubectl(
        "apply", "--validate=false", "-f", "-", stdin=MANIFEST.replace("dataplane:dev", "dataplane:v2")
    )
    assert "deployment.apps/gateway configured" in reapplied
    stored = apiserver.get_object("apps/v1/deployments", "default", "gateway")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"] == [
        {"name": "gateway", "image": "ttsfleet/dataplane:v2", "ports": [{"containerPort": 8080}]}
    ]

    deleted = await kubectl("delete", "-f", "-", stdin=MANIFEST)
    assert 'deployment.apps "gateway" deleted' in deleted
    assert apiserver.list_objects("apps/v1/deployments") == []
    assert apiserver.list_objects("v1/secrets") == []


async def test_client_side_dry_run_piped_into_apply(kubectl: Kubectl, apiserver: ApiServer) -> None:
    secret = await kubectl(
        "create", "secret", "generic", "deepgram", "--from-literal=key=abc", "--dry-run=client", "-o", "yaml"
    )
    await kubectl("apply", "--validate=false", "-f", "-", stdin=secret)
    stored = apiserver.get_object("v1/secrets", "default", "deepgram")
    assert stored is not None and stored["data"] == {"key": "YWJj"}


async def test_get_namespaces_and_wait_for_deletion(kubectl: Kubectl) -> None:
    assert "kube-system" in await kubectl("get", "namespaces", "-o", "name")
    await kubectl("create", "namespace", "team", "--dry-run=client", "-o", "yaml")
    await kubectl(
        "apply",
        "--validate=false",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n",
    )
    await kubectl("delete", "namespace", "team", "--wait=true", "--timeout=10s")
    assert "team" not in await kubectl("get", "namespaces", "-o", "name")


async def test_typed_create_commands_post_protobuf_and_are_stored(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    # kubectl's typed `create` commands send application/vnd.kubernetes.protobuf, not JSON.
    await kubectl("create", "namespace", "voice")
    await kubectl("-n", "voice", "create", "secret", "generic", "key", "--from-literal=api-key=abc")
    await kubectl("-n", "voice", "create", "configmap", "settings", "--from-literal=mode=fast")
    assert apiserver.get_object("v1/namespaces", None, "voice") is not None
    secret = apiserver.get_object("v1/secrets", "voice", "key")
    assert secret is not None and secret["data"] == {"api-key": "YWJj"} and secret["type"] == "Opaque"
    config = apiserver.get_object("v1/configmaps", "voice", "settings")
    assert config is not None and config["data"] == {"mode": "fast"}


async def test_get_prints_the_custom_resources_printer_columns(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    await kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(crd))
    widget = {
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 7},
    }
    await kubectl("apply", "--validate=false", "-f", "-", stdin=json.dumps(widget))
    header, row = (await kubectl("get", "widgets")).splitlines()
    assert header.split() == ["NAME", "SIZE", "AGE"]
    assert row.split()[:2] == ["w1", "7"]
