"""The prometheus-adapter rule and the KEDA ScaledObject in docs/autoscaling.md read series the gateway
really exports, under the name the operator's HPA asks for, with the operator's scale-down pace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.scrapes import Exported
from tests.monitoring.test_dashboard_queries import TARGET_LABELS
from tests.support.promql import selectors
from ttsfleet.operator import api
from ttsfleet.operator.rendering import scaling

DOC = Path(__file__).resolve().parents[2] / "docs" / "autoscaling.md"
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def snippet(kind: str) -> dict[str, Any]:
    """The YAML block of the doc that has `kind` as a top-level key or as its kind."""
    for block in YAML_BLOCK.findall(DOC.read_text()):
        document = yaml.safe_load(block)
        if kind in document or document.get("kind") == kind:
            return dict(document)
    raise AssertionError(f"docs/autoscaling.md has no YAML block with {kind}")


def test_the_adapter_rule_serves_the_exported_gauge_under_the_hpas_metric_name(
    gateway_exports: Exported,
) -> None:
    (rule,) = snippet("rules")["rules"]["custom"]
    (series,) = selectors(rule["seriesQuery"])
    assert series.metric == scaling.SESSIONS_METRIC
    assert series.metric in gateway_exports.names
    assert series.labels <= TARGET_LABELS
    assert re.fullmatch(rule["name"]["matches"], series.metric)
    assert rule["name"]["as"] == scaling.SESSIONS_METRIC  # the Pods metric the rendered HPA names
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }


def test_the_keda_object_scales_the_backend_on_exported_series_at_the_operators_pace(
    gateway_exports: Exported,
) -> None:
    scaled = snippet("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": "aura-en",
    }
    (prometheus,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    for selector in selectors(prometheus["metadata"]["query"]):
        assert selector.metric in gateway_exports.names
        assert selector.labels <= TARGET_LABELS
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert behavior["policies"] == scaling.DEFAULT_SCALE_DOWN["policies"]
    assert behavior["stabilizationWindowSeconds"] == scaling.DEFAULT_SCALE_DOWN["stabilizationWindowSeconds"]
