"""The generated CRD: in sync with crds/, valid for Kubernetes, structural, and a working schema."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ttsfleet.operator import api, crd

ROOT = Path(__file__).resolve().parents[2]
SpecOf = Callable[..., dict[str, Any]]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def strict(node: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused, as `kubectl apply --validate=strict` would."""
    out = copy.deepcopy(node)
    for _, child in walk(out):
        if "properties" in child and not child.get("x-kubernetes-preserve-unknown-fields"):
            child["additionalProperties"] = False
    return out


def instance(spec: dict[str, Any], name: str = "aura-en") -> dict[str, Any]:
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name}, "spec": spec}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return strict(crd.open_api_schema())


def test_checked_in_crd_is_the_generated_one() -> None:
    assert (ROOT / "crds" / "ttsbackend.yaml").read_text() == crd.render_crd_yaml(), (
        "crds/ttsbackend.yaml is stale: run `make generate`"
    )


def test_cli_prints_the_crd() -> None:
    from typer.testing import CliRunner

    from ttsfleet.cli import app

    result = CliRunner().invoke(app, ["crd"])
    assert result.exit_code == 0, result.output
    assert result.stdout == crd.render_crd_yaml()


def test_rendering_is_deterministic() -> None:
    assert crd.render_crd_yaml() == crd.render_crd_yaml()


def test_yaml_has_no_anchors_and_parses_back_to_the_crd() -> None:
    text = crd.render_crd_yaml()
    assert "&id" not in text
    assert yaml.safe_load(text) == crd.build_crd()


@pytest.mark.parametrize("version", ["1.29", "1.37"])
def test_crd_passes_kubernetes_validate_strict(version: str) -> None:
    kubernetes_validate.validate(crd.build_crd(), version, strict=True)


def test_names_subresources_and_columns() -> None:
    body = crd.build_crd()
    assert body["metadata"]["name"] == "ttsbackends.ttsfleet.io"
    spec = body["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == ["ttsb"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Replicas", "Desired", "Endpoint", "Reason", "Age"]


def test_every_field_has_a_description() -> None:
    root = crd.open_api_schema()
    missing = [
        path
        for path, node in walk(root)
        for name, child in node.get("properties", {}).items()
        if path != "" or name not in ("metadata",)
        if not child.get("description")
    ]
    assert missing == []


def test_schema_is_structural() -> None:
    for path, node in walk(crd.open_api_schema()):
        assert "$ref" not in node and "title" not in node and "$defs" not in node, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("additionalProperties") is not False, path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert "anyOf" not in node, path
            assert "type" in node, path


def test_defaults_validate_against_their_own_field() -> None:
    checked = 0
    for _, node in walk(crd.open_api_schema()):
        if "default" in node:
            jsonschema.validate(node["default"], strict(node))
            checked += 1
    assert checked > 30


def test_status_is_structural_and_conditions_are_a_map() -> None:
    status = crd.status_schema()
    # Only the operator writes status (kopf's progress lives in annotations): unknown fields are pruned.
    assert "x-kubernetes-preserve-unknown-fields" not in status
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]
    assert conditions["items"]["properties"]["type"]["enum"] == [kind.value for kind in api.ConditionType]


def test_free_form_scheduling_fields_are_preserved() -> None:
    scheduling = crd.spec_schema()["properties"]["scheduling"]["properties"]
    assert scheduling["affinity"]["x-kubernetes-preserve-unknown-fields"] is True
    assert scheduling["tolerations"]["items"]["x-kubernetes-preserve-unknown-fields"] is True


def test_cel_rules_sit_on_the_objects_they_check() -> None:
    spec = crd.spec_schema()
    assert [rule["fieldPath"] for rule in spec["x-kubernetes-validations"]] == [
        ".replicas",
        ".resources.requests",
        ".deepgram.socketBudget",
    ]
    assert spec["properties"]["autoscaling"]["x-kubernetes-validations"][0]["rule"] == (
        "self.minReplicas <= self.maxReplicas"
    )
    assert "24000" in spec["properties"]["deepgram"]["x-kubernetes-validations"][1]["rule"]
    for _, node in walk(crd.open_api_schema()):
        for rule in node.get("x-kubernetes-validations", ()):
            assert rule["message"] and "\n" not in rule["message"]


def test_a_full_example_validates(schema: dict[str, Any], spec_of: SpecOf) -> None:
    spec = spec_of(
        autoscaling={
            "minReplicas": 2,
            "maxReplicas": 20,
            "targetActiveStreamsPerPod": 40,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600, "policies": []}},
        },
        deepgram={"url": "ws://emulator.voice:8900", "encoding": "mulaw", "sampleRate": 8000},
        rollout={"maxSurge": 1, "drainTimeoutSeconds": 120},
        rotation={"strategy": "restart"},
        resources={"requests": {"cpu": 1, "memory": "512Mi"}},
        service={"port": 80, "type": "LoadBalancer", "annotations": {"a": "b"}},
        networkPolicy={"enabled": True, "upstreamCIDRs": ["10.0.0.0/8"]},
        monitoring={"serviceMonitor": {"enabled": True, "interval": "15s"}},
        scheduling={
            "nodeSelector": {"pool": "voice"},
            "tolerations": [{"key": "voice", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {"whatever": [1, 2]}},
            "topologySpread": {"whenUnsatisfiable": "DoNotSchedule"},
            "priorityClassName": "high",
        },
    )
    jsonschema.validate(instance(spec), schema)
    assert api.validate_spec(spec) == []


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"image": None}, id="missing-image"),
        pytest.param({"deepgram": {"apiKeySecretRef": None}}, id="missing-key-ref"),
        pytest.param({"deepgram": {"encoding": "opus"}}, id="bad-enum"),
        pytest.param({"deepgram": {"sampleRate": 4000}}, id="rate-below-bounds"),
        pytest.param({"deepgram": {"model": "Thalia"}}, id="bad-model-pattern"),
        pytest.param({"deepgram": {"apiKeySecretRef": {"name": "Not_A_Name"}}}, id="bad-secret-name"),
        pytest.param({"replicas": "three"}, id="wrong-type"),
        pytest.param({"autoscaling": {"maxReplicas": 0}}, id="max-below-one"),
        pytest.param({"rollout": {"maxSurge": "0%"}}, id="zero-surge"),
        pytest.param({"rollout": {"maxSurge": 0}}, id="zero-surge-count"),
        pytest.param({"resources": {"limits": {"memory": "lots"}}}, id="bad-quantity"),
        pytest.param({"service": {"type": "ExternalName"}}, id="bad-service-type"),
        pytest.param({"networkPolicy": {"upstreamCIDRs": []}}, id="no-cidrs"),
        pytest.param({"monitoring": {"serviceMonitor": {"interval": "soon"}}}, id="bad-interval"),
        pytest.param({"cache": {"sizeBytes": 1}}, id="unknown-field"),
    ],
)
def test_bad_instances_are_rejected_by_the_schema(
    schema: dict[str, Any], spec_of: SpecOf, overrides: dict[str, Any]
) -> None:
    spec = spec_of(**overrides)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(instance(spec), schema)
    assert api.validate_spec(spec), "the operator must see the same problem"


def test_unsupported_unions_are_refused() -> None:
    with pytest.raises(crd.SchemaError):
        crd.structural({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, {})
