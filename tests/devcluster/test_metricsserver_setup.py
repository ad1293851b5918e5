"""What registers metrics-server with the aggregator, and how its build is pinned and cached (pure)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ttsfleet.devcluster.metricsserver import build, running


def test_the_apiservice_reaches_the_loopback_server_through_an_externalname_service() -> None:
    objects = {(m["kind"], m["metadata"]["name"]): m for m in running.manifests(b"CA PEM", 43210)}
    service = objects[("Service", "metrics-server")]
    assert service["metadata"]["namespace"] == "kube-system"
    assert service["spec"] == {
        "type": "ExternalName",
        "externalName": "localhost",
        "ports": [{"port": 43210}],
    }
    api_service = objects[("APIService", "v1beta1.metrics.k8s.io")]["spec"]
    assert api_service["service"] == {"namespace": "kube-system", "name": "metrics-server", "port": 43210}
    assert (api_service["group"], api_service["version"]) == ("metrics.k8s.io", "v1beta1")
    assert base64.b64decode(api_service["caBundle"]) == b"CA PEM"  # verified, never insecureSkipTLSVerify
    assert "insecureSkipTLSVerify" not in api_service


def test_its_user_may_read_pods_nodes_and_node_metrics_and_delegate_authentication() -> None:
    objects = {(m["kind"], m["metadata"]["name"]): m for m in running.manifests(b"", 1)}
    rules = objects[("ClusterRole", running.USER)]["rules"]
    assert {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]} in rules
    assert all("*" not in rule["verbs"] for rule in rules)
    delegator = objects[("ClusterRoleBinding", f"{running.USER}:auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"


def test_the_version_comes_from_the_pinned_module_and_keys_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build.version().startswith("v0.")
    monkeypatch.setenv(build.CACHE_VARIABLE, str(tmp_path))
    assert build.cache_dir("v0.9.0") == tmp_path / "v0.9.0"
    with pytest.raises(build.MissingMetricsServer, match="make metrics-server"):
        build.locate()


def test_a_cache_is_current_only_with_the_program_and_the_same_build_key(tmp_path: Path) -> None:
    assert not build.up_to_date(tmp_path, "key")
    (tmp_path / build.PROGRAM).write_bytes(b"")
    (tmp_path / ".build-stamp").write_text("key\n")
    assert build.up_to_date(tmp_path, "key")
    assert not build.up_to_date(tmp_path, "another")
