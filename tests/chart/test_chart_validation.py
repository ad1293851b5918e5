"""Every rendered object is valid for Kubernetes 1.30, offline.

Built-in kinds and CRDs go through kubernetes-validate's strict schemas. Custom resources have no schema
there: kopf.dev objects are checked against the chart's own copy of kopf's CRDs; monitoring.coreos.com
objects (no CRD ships with us) get a structural check of the fields Prometheus Operator needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.helm import CHART, ROOT, Manifest, of_kind

KUBERNETES_VERSION = "1.30.0"
PROMETHEUS_OPERATOR_GROUP = "monitoring.coreos.com/v1"
KOPF_GROUP = "kopf.dev/v1"
DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")


def crd_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


CRD_FILES = [ROOT / "crds" / "ttsbackend.yaml", *sorted((CHART / "crds").glob("*.yaml"))]
KOPF_SCHEMAS = {
    crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for crd in crd_documents(CHART / "crds" / "kopf-peering.yaml")
}


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_crd_files_pass_kubernetes_validate_strict(path: Path) -> None:
    documents = crd_documents(path)
    assert documents
    for crd in documents:
        kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)


def test_rendered_builtin_objects_pass_kubernetes_validate_strict(manifests: list[Manifest]) -> None:
    checked = 0
    for doc in manifests:
        if doc["apiVersion"] in (PROMETHEUS_OPERATOR_GROUP, KOPF_GROUP):
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 6  # ServiceAccount, RBAC, Deployment, Service, test Pod at least


def test_kubernetes_validate_catches_what_it_should() -> None:
    """Guards the guard: an unknown field in a built-in kind must fail under --strict."""
    bad = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}, "automount": True}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_kopf_peerings_match_kopfs_crd(manifests: list[Manifest]) -> None:
    for doc in manifests:
        if doc["apiVersion"] == KOPF_GROUP:
            jsonschema.validate(doc, KOPF_SCHEMAS[doc["kind"]])
            assert set(doc) == {"apiVersion", "kind", "metadata"}


def _check_service_monitor(monitor: Manifest) -> None:
    spec = monitor["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
    assert spec["selector"]["matchLabels"]
    assert spec["endpoints"]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "honorLabels"}
        assert isinstance(endpoint["port"], str) and endpoint["path"].startswith("/")
        assert DURATION.match(endpoint["interval"]) and DURATION.match(endpoint["scrapeTimeout"])


def _check_prometheus_rule(rule: Manifest) -> None:
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    assert set(rule["spec"]) == {"groups"}
    assert len({group["name"] for group in groups}) == len(groups), "group names must be unique"
    for group in groups:
        assert set(group) == {"name", "rules"}
        for alert in group["rules"]:
            if "record" in alert:  # a recording rule: a level:metric:operation name and an expression
                assert set(alert) == {"record", "expr"}, alert["record"]
                assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z_0-9]+", alert["record"])
                assert "{{" not in alert["expr"], f"{alert['record']}: unrendered template in expr"
                continue
            assert set(alert) == {"alert", "expr", "for", "labels", "annotations"}, alert.get("alert")
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", alert["alert"])
            assert isinstance(alert["expr"], str) and alert["expr"].strip()
            assert alert["expr"].count("(") == alert["expr"].count(")"), alert["alert"]
            assert "{{" not in alert["expr"], f"{alert['alert']}: unrendered template in expr"
            assert DURATION.match(alert["for"])
            assert alert["labels"]["severity"] in {"critical", "warning", "info"}
            assert {"summary", "description", "runbook_url"} <= set(alert["annotations"])
            assert all(isinstance(value, str) for value in alert["annotations"].values())


def test_prometheus_operator_objects_are_well_formed(
    cluster_manifests: list[Manifest], namespaced_manifests: list[Manifest]
) -> None:
    for manifests in (cluster_manifests, namespaced_manifests):
        monitors = of_kind(manifests, "ServiceMonitor")
        rules = of_kind(manifests, "PrometheusRule")
        assert len(monitors) == 1 and len(rules) == 1
        for doc in (*monitors, *rules):
            assert doc["apiVersion"] == PROMETHEUS_OPERATOR_GROUP
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        _check_service_monitor(monitors[0])
        _check_prometheus_rule(rules[0])


def test_only_known_custom_kinds_are_rendered(manifests: list[Manifest]) -> None:
    custom = {
        doc["kind"] for doc in manifests if doc["apiVersion"] in (PROMETHEUS_OPERATOR_GROUP, KOPF_GROUP)
    }
    assert custom <= {"ServiceMonitor", "PrometheusRule", "KopfPeering", "ClusterKopfPeering"}
