"""The API as a standalone process, reached through the kubeconfig it writes by the `kubernetes` client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import kubernetes
import yaml

from tests.support.waiting import wait_for
from ttsfleet.devcluster.ports import free_port


def test_standalone_process_serves_the_kubernetes_client(tmp_path: Path) -> None:
    port, config = free_port(), tmp_path / "kubeconfig"
    env = dict(os.environ)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ttsfleet.devcluster.apiserver",
            "--port",
            str(port),
            "--kubeconfig",
            str(config),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/version").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, deadline_s=20, what="the apiserver process")
        document = yaml.safe_load(config.read_text())
        assert document["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        assert config.stat().st_mode & 0o777 == 0o600

        api_client = kubernetes.config.new_client_from_config(config_file=str(config))
        with api_client:
            core = kubernetes.client.CoreV1Api(api_client)
            names = {ns.metadata.name for ns in core.list_namespace().items}
            assert {"default", "kube-system"} <= names
            body = kubernetes.client.V1ConfigMap(
                metadata=kubernetes.client.V1ObjectMeta(name="c"), data={"k": "v"}
            )
            created = core.create_namespaced_config_map("default", body)
            assert created.metadata.resource_version
            assert core.read_namespaced_config_map("c", "default").data == {"k": "v"}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output.decode()
    assert f"listening on http://127.0.0.1:{port}" in output.decode()
