"""The Prometheus Operator's CRDs, reduced to what an API server needs to serve their kinds.

A cluster without the Prometheus Operator answers 404 for `monitoring.coreos.com`; tests that want the
ServiceMonitor or PrometheusRule served apply these first, as a cluster admin would apply the real ones.
"""

from __future__ import annotations

from typing import Any

GROUP = "monitoring.coreos.com"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def monitoring_crd(kind: str, plural: str) -> dict[str, Any]:
    """A namespaced v1 CRD of the monitoring group whose schema keeps every field."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


SERVICE_MONITOR_CRD = monitoring_crd("ServiceMonitor", "servicemonitors")
PROMETHEUS_RULE_CRD = monitoring_crd("PrometheusRule", "prometheusrules")
