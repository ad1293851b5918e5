"""The real HPA controller's verdicts reach the TTSBackend: its replicas and conditions are mirrored into
status, and a metric it cannot read becomes ScalingActive=False with a Warning Event saying what to
install. The operator runs as the chart's ServiceAccount, so the HPA watch is checked against its RBAC.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.controlplane.test_controlplane_operator_rbac import (
    chart_rbac,
    get,
    operator_as,
    release_namespace,
    start_backend,
    warnings_about,
)
from tests.support.helm import helm
from tests.support.waiting import wait_for
from ttsfleet.devcluster.controlplane import provisioning
from ttsfleet.devcluster.controlplane.launcher import ControlPlane

__all__ = ["helm", "release_namespace"]  # fixtures, used by name
# The HPA controller evaluates every 15 s; the operator mirrors on its next probe tick.
MIRROR_DEADLINE_S = 120.0


def backend_status(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    body = get(plane, f"/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends/{name}")
    return dict((body or {}).get("status") or {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((entry for entry in status.get("conditions") or () if entry["type"] == kind), None)


def test_a_missing_streams_metric_is_a_warning_that_says_what_to_install(
    control_plane: ControlPlane, helm: Path, release_namespace: str, tmp_path: Path
) -> None:
    namespace = "voice-streams"
    provisioning.create_namespaces(control_plane, (namespace,))
    manifests = chart_rbac(helm, "streams", namespace)
    with operator_as(control_plane, manifests, namespace, tmp_path):
        try:
            start_backend(
                control_plane,
                namespace,
                "aura",
                autoscaling={"minReplicas": 1, "maxReplicas": 3, "targetActiveStreamsPerPod": 4},
            )

            def streams_metric_reported() -> dict[str, Any] | None:
                status = backend_status(control_plane, namespace, "aura")
                scaling = condition(status, "ScalingActive")
                if scaling is None or scaling["reason"] != "StreamsMetricUnavailable":
                    return None
                warned = [
                    warning
                    for warning in warnings_about(control_plane, namespace, "aura")
                    if warning.startswith("StreamsMetricUnavailable:")
                ]
                return status if warned else None

            status = wait_for(
                streams_metric_reported,
                MIRROR_DEADLINE_S,
                lambda: (
                    f"ScalingActive=False from the HPA controller mirrored; status: "
                    f"{backend_status(control_plane, namespace, 'aura')}; "
                    f"warnings: {warnings_about(control_plane, namespace, 'aura')}"
                ),
            )
            scaling = condition(status, "ScalingActive")
            assert scaling is not None and scaling["status"] == "False"
            assert "custom.metrics.k8s.io" in scaling["message"]
            assert "prometheus-adapter" in scaling["message"]
            # The HPA controller's own condition, as it wrote it, is in the mirror beside AbleToScale.
            mirrored = {entry["type"]: entry for entry in status["autoscaling"]["conditions"]}
            assert mirrored["ScalingActive"]["status"] == "False"
            assert mirrored["ScalingActive"]["reason"] == "FailedGetPodsMetric"
            assert mirrored["AbleToScale"]["status"] == "True"
            hpa = get(
                control_plane, f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/aura"
            )
            assert hpa is not None
            assert status["autoscaling"]["currentReplicas"] == hpa["status"]["currentReplicas"]
            # News once: later probe ticks see the same reason and post nothing.
            warnings = warnings_about(control_plane, namespace, "aura")
            assert len([w for w in warnings if w.startswith("StreamsMetricUnavailable:")]) == 1, warnings
        finally:
            # Its pods are Pending (no node here): a later test's node agent must not inherit them.
            with control_plane.admin_client() as http:
                http.delete(f"/apis/ttsfleet.io/v1alpha1/namespaces/{namespace}/ttsbackends/aura")
