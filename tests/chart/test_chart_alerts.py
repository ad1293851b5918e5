"""The shipped alerts: the agreed set, each linked to a runbook that exists and says what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import ROOT, Manifest, one, render

RUNBOOKS = ROOT / "docs" / "runbooks"
EXPECTED_ALERTS = {
    "TTSFleetOperatorAbsent",
    "TTSFleetReconcileErrors",
    "TTSBackendNotReady",
    "TTSBackendCredentialRotationStuck",
    "TTSBackendKeyRotationFailing",
    "TTSBackendCharacterBudgetExceeded",
    "TTSBackendHPAAtMax",
    "TTSBackendTTFBHighP99",
    "TTSBackendErrorRatioHigh",
    "TTSBackendSaturated",
    "TTSBackendPodMemoryNearLimit",
    "TTSBackendPodFdsNearLimit",
    "TTSBackendAvailabilityBudgetBurn",
    "TTSBackendLatencyBudgetBurn",
}
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")


def alerts(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    spec_groups = one(manifests, "PrometheusRule")["spec"]["groups"]
    return {rule["alert"]: rule for group in spec_groups for rule in group["rules"] if "alert" in rule}


def test_the_agreed_alerts_ship(cluster_manifests: list[Manifest]) -> None:
    assert set(alerts(cluster_manifests)) == EXPECTED_ALERTS


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_runbook_url_points_at_an_existing_runbook(cluster_manifests: list[Manifest], name: str) -> None:
    url = alerts(cluster_manifests)[name]["annotations"]["runbook_url"]
    assert url == f"https://github.com/ttsfleet/ttsfleet/blob/main/docs/runbooks/{name}.md"
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), f"{runbook.relative_to(ROOT)} is missing"
    text = runbook.read_text()
    assert text.startswith(f"# {name}\n")
    for section in RUNBOOK_SECTIONS:
        assert section in text, f"{runbook.name} lacks {section}"
    assert "kubectl" in text, f"{runbook.name} gives no commands to diagnose with"


def test_no_runbook_without_an_alert() -> None:
    assert {path.stem for path in RUNBOOKS.glob("*.md")} == EXPECTED_ALERTS


def test_runbook_base_url_and_thresholds_are_values(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"  # a file, because `--set` passes 0.5 as a string
    values.write_text(
        yaml.safe_dump(
            {
                "prometheusRule": {
                    "enabled": True,
                    "runbookBaseURL": "https://runbooks.example.com/ttsfleet/",
                    "thresholds": {"ttfbP99Seconds": 0.5, "rotationStuckMinutes": 30},
                    "additionalAlertLabels": {"team": "voice"},
                }
            }
        )
    )
    manifests = render(helm, [values])
    rendered = alerts(manifests)
    assert rendered["TTSBackendNotReady"]["annotations"]["runbook_url"] == (
        "https://runbooks.example.com/ttsfleet/TTSBackendNotReady.md"
    )
    assert rendered["TTSBackendTTFBHighP99"]["expr"].rstrip().endswith("> 0.5")
    assert rendered["TTSBackendCredentialRotationStuck"]["for"] == "30m"
    assert all(alert["labels"]["team"] == "voice" for alert in rendered.values())


def test_operator_absent_alert_watches_the_operators_own_scrape_job(
    cluster_manifests: list[Manifest],
) -> None:
    service = one(cluster_manifests, "Service")["metadata"]
    expr = alerts(cluster_manifests)["TTSFleetOperatorAbsent"]["expr"]
    assert f'job="{service["name"]}"' in expr and f'namespace="{service["namespace"]}"' in expr


def test_gateway_alerts_use_the_gateways_metric_names(cluster_manifests: list[Manifest]) -> None:
    """Names as dataplane/metrics.py registers them (a counter `x` is exposed as `x_total`)."""
    rendered = alerts(cluster_manifests)
    assert "ttsfleet_ttfb_seconds_bucket" in rendered["TTSBackendTTFBHighP99"]["expr"]
    assert 'ttsfleet_utterances_total{outcome="failed"}' in rendered["TTSBackendErrorRatioHigh"]["expr"]
    assert "ttsfleet_sessions_active" in rendered["TTSBackendSaturated"]["expr"]
