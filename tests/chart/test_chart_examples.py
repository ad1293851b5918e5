"""The examples apply as they are: the TTSBackend fits the CRD's schema, the Secrets are watched."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.helm import ROOT, Manifest

EXAMPLES = ROOT / "examples"
KUBERNETES_VERSION = "1.30.0"


def load(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def strict(node: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema with unknown fields refused (as `kubectl apply --validate=strict` refuses them)."""
    out = copy.deepcopy(node)
    stack = [out]
    while stack:
        current = stack.pop()
        if "properties" in current and not current.get("x-kubernetes-preserve-unknown-fields"):
            current.setdefault("additionalProperties", False)
        stack.extend(current.get("properties", {}).values())
        if isinstance(current.get("items"), dict):
            stack.append(current["items"])
        if isinstance(current.get("additionalProperties"), dict):
            stack.append(current["additionalProperties"])
    return out


@pytest.fixture(scope="module")
def ttsbackend_schema() -> dict[str, Any]:
    crd = next(
        doc for doc in load(ROOT / "crds" / "ttsbackend.yaml") if doc["kind"] == "CustomResourceDefinition"
    )
    (version,) = [version for version in crd["spec"]["versions"] if version["storage"]]
    return strict(version["schema"]["openAPIV3Schema"])


def example_backend() -> Manifest:
    (backend,) = load(EXAMPLES / "ttsbackend-aura-en.yaml")
    return backend


def test_example_backend_is_valid_against_the_crd_schema(ttsbackend_schema: dict[str, Any]) -> None:
    backend = example_backend()
    assert (backend["apiVersion"], backend["kind"]) == ("ttsfleet.io/v1alpha1", "TTSBackend")
    assert backend["metadata"] == {"name": "aura-en", "namespace": "voice"}
    assert backend["spec"]["replicas"] == 2
    jsonschema.validate(backend, ttsbackend_schema)


def test_the_schema_check_refuses_a_misspelt_field(ttsbackend_schema: dict[str, Any]) -> None:
    backend = example_backend()
    backend["spec"]["replica"] = backend["spec"].pop("replicas")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(backend, ttsbackend_schema)


def test_example_backend_references_the_example_secrets() -> None:
    spec = example_backend()["spec"]
    secrets = {doc["metadata"]["name"]: doc for doc in load(EXAMPLES / "secrets-aura-en.yaml")}
    deepgram = spec["deepgram"]["apiKeySecretRef"]
    tokens = spec["auth"]["clientTokensSecretRef"]
    assert deepgram["key"] in secrets[deepgram["name"]]["stringData"]
    assert tokens["key"] in secrets[tokens["name"]]["stringData"]


def test_example_secrets_are_watched_and_hold_placeholders_only() -> None:
    for secret in load(EXAMPLES / "secrets-aura-en.yaml"):
        assert secret["metadata"]["labels"]["ttsfleet.io/watch"] == "true"
        assert secret["metadata"]["namespace"] == "voice"
        assert all(value.strip().startswith("REPLACE-WITH-") for value in secret["stringData"].values())


@pytest.mark.parametrize("name", ["namespace-voice.yaml", "secrets-aura-en.yaml"])
def test_builtin_examples_pass_kubernetes_validate_strict(name: str) -> None:
    for doc in load(EXAMPLES / name):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_example_backend_passes_the_api_models_cross_field_rules() -> None:
    """The models carry the CRD's CEL rules as checks, so this is what the apiserver would admit."""
    from ttsfleet.operator import api

    backend = api.TTSBackend.from_body(example_backend())
    assert backend.spec.replicas == 2
    assert backend.spec.deepgram.model in backend.spec.deepgram.allowed_models
