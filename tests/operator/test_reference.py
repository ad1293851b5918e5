"""docs/crd-reference.md: generated from the CRD schema and kept in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ttsfleet.operator import crd, reference

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_reference_is_the_generated_one() -> None:
    assert (ROOT / "docs" / "crd-reference.md").read_text() == reference.render_reference(), (
        "docs/crd-reference.md is stale: run `make generate`"
    )


def test_every_spec_field_appears_with_its_default_and_bounds() -> None:
    page = reference.render_reference()
    assert "## `spec.deepgram`" in page
    assert "| `maxReplicas` | integer | `10` | ≥ 1, ≤ 1000 |" in page
    assert "| `apiKeySecretRef` | object | *required* |" in page
    assert '| `maxSurge` | int or string | `"25%"` |' in page
    assert "| `encoding` | `linear16` \\| `mulaw` \\| `alaw` |" in page
    assert "| `tolerations` | list of object (free-form) |" in page
    assert "| `allowedModels` | list of string |" in page
    assert "| `requests` | map of int or string |" in page
    assert "| `lastTransitionTime` | string (date-time) |" in page
    assert "## `spec.autoscaling.behavior.scaleDown.policies[]`" in page


def test_cel_rules_are_listed_with_their_messages() -> None:
    page = reference.render_reference()
    for node_rules in (crd.spec_schema()["x-kubernetes-validations"], [crd.NAME_RULE.to_schema()]):
        for rule in node_rules:
            assert f"- {rule['message']} — `{rule['rule']}`" in page


def test_module_prints_the_page_for_regeneration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ttsfleet.operator.reference"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout == reference.render_reference()
