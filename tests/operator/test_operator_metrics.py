"""The operator's metrics: per-backend readiness, the backends-by-Ready gauge, forgetting, serving."""

from __future__ import annotations

import urllib.request

from prometheus_client import CollectorRegistry

from ttsfleet.devcluster.ports import free_port
from ttsfleet.operator.metrics import OperatorMetrics


def sample(metrics: OperatorMetrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_ready_is_one_only_when_converged_and_backends_are_counted_by_ready_status() -> None:
    metrics = OperatorMetrics()
    metrics.set_ready("voice", "a", "True", converged=True)
    metrics.set_ready("voice", "b", "True", converged=False)
    metrics.set_ready("voice", "c", "False", converged=False)
    assert sample(metrics, "ttsfleet_backend_ready", {"namespace": "voice", "name": "a"}) == 1
    assert sample(metrics, "ttsfleet_backend_ready", {"namespace": "voice", "name": "b"}) == 0
    assert sample(metrics, "ttsfleet_operator_backends", {"ready": "True"}) == 2
    assert sample(metrics, "ttsfleet_operator_backends", {"ready": "False"}) == 1
    assert sample(metrics, "ttsfleet_operator_backends", {"ready": "Unknown"}) == 0


def test_a_backend_changing_state_moves_between_counts() -> None:
    metrics = OperatorMetrics()
    metrics.set_ready("voice", "a", "False", converged=False)
    metrics.set_ready("voice", "a", "True", converged=True)
    assert sample(metrics, "ttsfleet_operator_backends", {"ready": "False"}) == 0
    assert sample(metrics, "ttsfleet_operator_backends", {"ready": "True"}) == 1


def test_a_forgotten_backend_loses_its_series_and_its_count() -> None:
    metrics = OperatorMetrics()
    metrics.set_ready("voice", "a", "True", converged=True)
    metrics.forget("voice", "a")
    metrics.forget("voice", "never-seen")  # idempotent
    assert sample(metrics, "ttsfleet_backend_ready", {"namespace": "voice", "name": "a"}) is None
    assert sample(metrics, "ttsfleet_operator_backends", {"ready": "True"}) == 0


def test_counters_are_exported_with_the_total_suffix() -> None:
    metrics = OperatorMetrics()
    metrics.reconciles.labels("changed").inc()
    metrics.reconcile_failed("voice", "a", "ApiConflict")
    metrics.probe_failures.inc(2)
    metrics.status_refreshes.inc()
    metrics.status_writes.inc()
    assert sample(metrics, "ttsfleet_operator_reconciles_total", {"outcome": "changed"}) == 1
    assert (
        sample(
            metrics,
            "ttsfleet_operator_reconcile_errors_total",
            {"namespace": "voice", "name": "a", "error": "ApiConflict"},
        )
        == 1
    )
    assert sample(metrics, "ttsfleet_operator_probe_failures_total") == 2
    assert sample(metrics, "ttsfleet_operator_status_refreshes_total") == 1
    assert sample(metrics, "ttsfleet_operator_status_writes_total") == 1


def test_credential_rollout_is_one_when_every_pod_has_the_key_and_absent_without_pods() -> None:
    """What TTSBackendCredentialRotationStuck reads; a backend without reporting pods has no series."""
    metrics = OperatorMetrics()
    labels = {"namespace": "voice", "name": "a"}
    metrics.set_credential_rollout("voice", "a", complete=False)
    assert sample(metrics, "ttsfleet_backend_credential_rollout_complete", labels) == 0
    metrics.set_credential_rollout("voice", "a", complete=True)
    assert sample(metrics, "ttsfleet_backend_credential_rollout_complete", labels) == 1
    metrics.set_credential_rollout("voice", "a", complete=None)
    assert sample(metrics, "ttsfleet_backend_credential_rollout_complete", labels) is None


def test_a_forgotten_backend_loses_its_rollout_and_error_series() -> None:
    metrics = OperatorMetrics()
    metrics.set_credential_rollout("voice", "a", complete=True)
    metrics.reconcile_failed("voice", "a", "ApiConflict")
    metrics.reconcile_failed("voice", "b", "ApiConflict")
    metrics.forget("voice", "a")
    assert (
        sample(metrics, "ttsfleet_backend_credential_rollout_complete", {"namespace": "voice", "name": "a"})
        is None
    )
    errors = "ttsfleet_operator_reconcile_errors_total"
    assert sample(metrics, errors, {"namespace": "voice", "name": "a", "error": "ApiConflict"}) is None
    assert sample(metrics, errors, {"namespace": "voice", "name": "b", "error": "ApiConflict"}) == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = OperatorMetrics(), OperatorMetrics(CollectorRegistry())
    first.status_writes.inc()
    assert sample(second, "ttsfleet_operator_status_writes_total") == 0


def test_serve_exposes_the_registry_and_close_stops_it() -> None:
    metrics = OperatorMetrics()
    metrics.status_writes.inc()
    port = free_port()
    metrics.serve(port, host="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.close()
    assert "ttsfleet_operator_status_writes_total 1.0" in text
    metrics.close()  # closing twice is harmless
