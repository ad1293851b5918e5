"""The chart lints, renders in both RBAC modes, and lays out the operator as the conventions ask."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.helm import (
    CHART,
    NAMESPACED_VALUES,
    RELEASE,
    RELEASE_NAMESPACE,
    ROOT,
    WATCHED_NAMESPACES,
    Manifest,
    of_kind,
    one,
    run_helm,
    template_command,
)

STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


@pytest.mark.parametrize(
    "values_files",
    [pytest.param([], id="default"), pytest.param([NAMESPACED_VALUES], id="namespaced")],
)
def test_helm_lint_passes_strictly(helm: Path, values_files: list[Path]) -> None:
    args = ["lint", str(CHART), "--strict", "--namespace", RELEASE_NAMESPACE]
    for path in values_files:
        args += ["--values", str(path)]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_chart_crd_is_the_generated_one() -> None:
    chart_copy = CHART / "crds" / "ttsbackend.yaml"
    assert chart_copy.read_bytes() == (ROOT / "crds" / "ttsbackend.yaml").read_bytes(), (
        "the chart's CRD differs from crds/: run `make generate`"
    )


def test_every_object_carries_the_standard_labels(manifests: list[Manifest]) -> None:
    for doc in manifests:
        labels = doc["metadata"].get("labels", {})
        missing = [key for key in STANDARD_LABELS if key not in labels]
        assert not missing, f"{doc['kind']} {doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/part-of"] == "ttsfleet"
        assert labels["app.kubernetes.io/instance"] == RELEASE


def test_pod_templates_carry_the_standard_labels(manifests: list[Manifest]) -> None:
    deployment = one(manifests, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(key in labels for key in STANDARD_LABELS)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/version" not in selector, "selectors must use only labels that never change"
    assert selector.items() <= labels.items()


def test_namespaced_objects_have_a_namespace(manifests: list[Manifest]) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering", "CustomResourceDefinition"}
    for doc in manifests:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"].get("namespace"), f"{doc['kind']} {doc['metadata']['name']}"


def test_operator_runs_once_with_recreate(manifests: list[Manifest]) -> None:
    spec = one(manifests, "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


def test_operator_liveness_uses_kopfs_health_endpoint(manifests: list[Manifest]) -> None:
    container = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--liveness=http://0.0.0.0:8081/healthz" in container["args"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"health": 8081, "metrics": 9090}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_operator_pod_meets_the_restricted_pod_security_standard(manifests: list[Manifest]) -> None:
    pods = [
        one(manifests, "Deployment")["spec"]["template"]["spec"],
        *[p["spec"] for p in of_kind(manifests, "Pod")],
    ]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])


def test_cluster_mode_serves_all_namespaces(default_manifests: list[Manifest]) -> None:
    args = one(default_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args
    assert not [arg for arg in args if arg.startswith("--namespace")]
    assert not of_kind(default_manifests, "Role")


def test_namespaced_mode_serves_only_the_listed_namespaces(namespaced_manifests: list[Manifest]) -> None:
    args = one(namespaced_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [arg for arg in args if arg.startswith("--namespace")] == [
        f"--namespace={namespace}" for namespace in WATCHED_NAMESPACES
    ]
    assert "--all-namespaces" not in args
    for kind in ("Role", "RoleBinding", "KopfPeering"):
        assert sorted(doc["metadata"]["namespace"] for doc in of_kind(namespaced_manifests, kind)) == sorted(
            WATCHED_NAMESPACES
        ), kind


def test_peering_is_a_value(default_manifests: list[Manifest], cluster_manifests: list[Manifest]) -> None:
    with_peering = one(default_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=ttsfleet" in with_peering
    assert one(default_manifests, "ClusterKopfPeering")["metadata"]["name"] == "ttsfleet"
    without = one(cluster_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" in without
    assert not of_kind(cluster_manifests, "ClusterKopfPeering")


def test_image_digest_pins_the_image(
    namespaced_manifests: list[Manifest], default_manifests: list[Manifest]
) -> None:
    pinned = one(namespaced_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert pinned == "registry.example.com/ttsfleet/operator@sha256:" + "0123456789abcdef" * 4
    default = one(default_manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert default == f"ghcr.io/ttsfleet/operator:{chart['appVersion']}"


def test_priority_class_is_an_option(
    namespaced_manifests: list[Manifest], default_manifests: list[Manifest]
) -> None:
    assert (
        one(namespaced_manifests, "Deployment")["spec"]["template"]["spec"]["priorityClassName"]
        == "system-cluster-critical"
    )
    assert "priorityClassName" not in one(default_manifests, "Deployment")["spec"]["template"]["spec"]


def test_metrics_service_and_service_monitor_select_the_operator(cluster_manifests: list[Manifest]) -> None:
    deployment = one(cluster_manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(cluster_manifests, "Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitor = one(cluster_manifests, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["metrics"]


def test_monitoring_objects_are_optional(default_manifests: list[Manifest]) -> None:
    kinds = {doc["kind"] for doc in default_manifests}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_dashboard_is_valid_grafana_json(cluster_manifests: list[Manifest]) -> None:
    import json

    config_map = one(cluster_manifests, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["ttsfleet.json"])
    assert dashboard["uid"] == "ttsfleet-overview"
    assert dashboard["panels"], "the dashboard has no panels"
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(target["expr"] for target in panel["targets"]), panel["title"]


def test_helm_test_pod_speaks_through_the_backend(namespaced_manifests: list[Manifest]) -> None:
    pod = one(namespaced_manifests, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["metadata"]["namespace"] == "voice"
    assert pod["spec"]["automountServiceAccountToken"] is False
    container = pod["spec"]["containers"][0]
    script = container["args"][0]
    assert "ttsfleet say" in script and '--url "$SPEAK_URL"' in script
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["SPEAK_URL"] == "ws://aura-en.voice.svc.cluster.local:8080"
    assert container["image"] == "ghcr.io/ttsfleet/dataplane:0.1.0"


def test_helm_test_pod_without_auth_mounts_no_tokens(helm: Path) -> None:
    from tests.support.helm import render

    pod = one(render(helm, set_values=["tests.tokenSecret.name="]), "Pod")
    assert "TTSFLEET_TOKEN" not in pod["spec"]["containers"][0]["args"][0]
    assert [volume["name"] for volume in pod["spec"]["volumes"]] == ["tmp"]


def test_notes_name_the_next_steps(helm: Path, tmp_path: Path) -> None:
    # `helm template` skips NOTES.txt and `helm install --dry-run` needs a cluster: render the notes
    # from a copy of the chart where they are a named template emitted into a YAML document.
    chart = tmp_path / "ttsfleet"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "check.notes" -}}\n' + notes + "{{- end -}}\n"
    )
    (chart / "templates" / "notes.yaml").write_text('notes: {{ include "check.notes" . | toJson }}\n')
    result = run_helm(helm, "template", RELEASE, str(chart), "--show-only", "templates/notes.yaml")
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["notes"]
    for step in (
        "ttsfleet.io/watch=true",
        "kubectl -n voice get ttsb",
        "--for=condition=Ready",
        # The chart's CRD was applied by helm; taking its fields over needs --force-conflicts.
        "kubectl apply --server-side --force-conflicts -f crds/",
        "helm test",
    ):
        assert step in rendered


@pytest.mark.parametrize(
    ("assignment", "complaint"),
    [
        pytest.param("operator.bogus=1", "bogus", id="unknown-key"),
        pytest.param("image.digest=latest", "image.digest", id="digest-not-sha256"),
        pytest.param("image.pullPolicy=Sometimes", "pullPolicy", id="pull-policy-enum"),
        pytest.param("operator.watchNamespaces[0]=Not_A_Namespace", "watchNamespaces", id="namespace-name"),
        pytest.param("operator.logLevel=LOUD", "logLevel", id="log-level-enum"),
        pytest.param("operator.healthPort=80", "healthPort", id="privileged-port"),
        pytest.param("prometheusRule.thresholds.errorRatio=2", "errorRatio", id="ratio-above-one"),
        pytest.param(
            "prometheusRule.runbookBaseURL=docs/runbooks", "runbookBaseURL", id="relative-runbook-url"
        ),
        pytest.param("podSecurityContext.runAsNonRoot=false", "runAsNonRoot", id="root-pod"),
        pytest.param("tests.backend.port=0", "port", id="port-zero"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, assignment: str, complaint: str) -> None:
    result = run_helm(helm, *template_command(set_values=[assignment]))
    assert result.returncode != 0, f"{assignment} was accepted"
    assert complaint in result.stderr


def test_service_monitor_without_its_service_is_refused(helm: Path) -> None:
    result = run_helm(
        helm,
        *template_command(
            set_values=["metrics.service.enabled=false", "metrics.serviceMonitor.enabled=true"]
        ),
    )
    assert result.returncode != 0
    assert "metrics.service.enabled" in result.stderr
