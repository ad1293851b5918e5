"""The TTSBackend models: defaults, wire names, and the problems validate_spec reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from ttsfleet import protocol
from ttsfleet.operator import api
from ttsfleet.protocol import formats

SpecOf = Callable[..., dict[str, Any]]


def test_minimal_spec_takes_documented_defaults(spec_of: SpecOf) -> None:
    spec = api.parse_spec(spec_of())
    assert spec.deepgram.url == "wss://api.deepgram.com"
    assert spec.deepgram.api_key_secret_ref.key == "api-key"
    assert spec.deepgram.model == protocol.DEFAULT_VOICE == "aura-asteria-en"
    assert spec.deepgram.encoding is api.SpeakEncoding.LINEAR16
    assert spec.deepgram.effective_sample_rate == 24000
    assert spec.auth.client_tokens_secret_ref is not None
    assert spec.auth.client_tokens_secret_ref.key == "tokens"
    assert spec.rollout.max_surge == "25%"
    assert spec.rotation.strategy is api.RotationStrategy.RELOAD
    assert spec.service.port == 8080
    assert spec.network_policy.enabled is False
    assert spec.resources.requests == {"cpu": "250m", "memory": "256Mi"}
    assert spec.fixed_replicas == 1
    assert spec.min_pods == 1


def test_wire_names_are_camel_case_both_ways(spec_of: SpecOf) -> None:
    spec = api.parse_spec(spec_of(autoscaling={"targetCPUUtilizationPercentage": 50}, replicas=None))
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["deepgram"]["apiKeySecretRef"] == {"name": "deepgram", "key": "api-key"}
    assert dumped["autoscaling"]["targetCPUUtilizationPercentage"] == 50
    assert dumped["networkPolicy"]["upstreamCIDRs"] == ["0.0.0.0/0"]
    assert api.parse_spec(dumped) == spec


def test_models_accept_python_names_too() -> None:
    ref = api.SecretKeyRef(name="deepgram", key="k")
    assert ref.model_dump() == {"name": "deepgram", "key": "k"}


def test_models_are_frozen(spec_of: SpecOf) -> None:
    spec = api.parse_spec(spec_of())
    with pytest.raises(pydantic.ValidationError):
        spec.image = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        pytest.param("linear16", 24000, id="linear16"),
        pytest.param("mulaw", 8000, id="mulaw"),
        pytest.param("alaw", 8000, id="alaw"),
    ],
)
def test_unset_sample_rate_is_the_encodings_default(spec_of: SpecOf, encoding: str, expected: int) -> None:
    spec = api.parse_spec(spec_of(deepgram={"encoding": encoding}))
    assert spec.deepgram.effective_sample_rate == expected


def test_encodings_are_the_protocols_websocket_encodings() -> None:
    assert {encoding.value for encoding in api.SpeakEncoding} == {
        encoding.value for encoding in protocol.WEBSOCKET_ENCODINGS
    }


@pytest.mark.parametrize("model", sorted(protocol.KNOWN_MODELS))
def test_model_pattern_accepts_every_known_voice(spec_of: SpecOf, model: str) -> None:
    assert formats.is_well_formed_model(model)
    assert api.validate_spec(spec_of(deepgram={"model": model})) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"replicas": 2, "autoscaling": {}},
            ["spec.replicas: set either replicas or autoscaling, not both"],
            id="replicas-and-autoscaling",
        ),
        pytest.param(
            {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
            ["spec.autoscaling.minReplicas: minReplicas must not exceed maxReplicas"],
            id="min-above-max",
        ),
        pytest.param(
            {"auth": {"clientTokensSecretRef": None}},
            [
                "spec.auth.clientTokensSecretRef: "
                "clientTokensSecretRef is required unless auth is disabled (enabled: false)"
            ],
            id="auth-without-tokens",
        ),
        pytest.param(
            {"deepgram": {"encoding": "mulaw", "sampleRate": 24000}},
            [
                "spec.deepgram.sampleRate: "
                "sampleRate is not offered for this encoding (mulaw and alaw: 8000 or 16000)"
            ],
            id="rate-not-for-encoding",
        ),
        pytest.param(
            {"deepgram": {"allowedModels": ["aura-2-zeus-en"]}},
            ["spec.deepgram.model: model must be one of allowedModels"],
            id="model-not-allowed",
        ),
        pytest.param(
            {"autoscaling": {}, "resources": {"requests": {"memory": "256Mi"}}},
            ["spec.resources.requests: CPU autoscaling needs resources.requests.cpu"],
            id="cpu-autoscaling-without-cpu-request",
        ),
        pytest.param(
            {"rollout": {"maxSurge": "0%"}},
            ["spec.rollout.maxSurge: maxSurge '0%' must be a count or a percentage such as 25%"],
            id="zero-percent-surge",
        ),
        pytest.param(
            {"rollout": {"maxSurge": 0}},
            ["spec.rollout.maxSurge: maxSurge must be at least 1 (maxUnavailable is 0)"],
            id="zero-surge",
        ),
        pytest.param(
            {"resources": {"limits": {"memory": "lots"}}},
            ["spec.resources.limits.memory: 'lots' is not a Kubernetes quantity (e.g. 250m, 1Gi)"],
            id="bad-quantity",
        ),
        pytest.param(
            {"resources": {"limits": {"cpu": -1}}},
            ["spec.resources.limits.cpu: a quantity must not be negative"],
            id="negative-quantity",
        ),
    ],
)
def test_cross_field_problems_are_reported_with_their_path(
    spec_of: SpecOf, overrides: dict[str, Any], expected: list[str]
) -> None:
    assert api.validate_spec(spec_of(**overrides)) == expected


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        pytest.param({"image": None}, "spec.image", id="missing-image"),
        pytest.param({"auth": None}, "spec.auth", id="missing-auth"),
        pytest.param({"deepgram": {"url": "https://api.deepgram.com"}}, "spec.deepgram.url", id="http-url"),
        pytest.param({"deepgram": {"model": "thalia"}}, "spec.deepgram.model", id="malformed-model"),
        pytest.param({"deepgram": {"encoding": "mp3"}}, "spec.deepgram.encoding", id="rest-only-encoding"),
        pytest.param({"replicas": -1}, "spec.replicas", id="negative-replicas"),
        pytest.param({"replicas": "3"}, "spec.replicas", id="replicas-as-a-string"),
        pytest.param({"cache": {"enabled": "yes"}}, "spec.cache.enabled", id="bool-as-a-string"),
        pytest.param({"limits": {"maxSessions": 10.5}}, "spec.limits.maxSessions", id="fraction-for-int"),
        pytest.param({"service": {"port": 70000}}, "spec.service.port", id="port-out-of-range"),
        pytest.param(
            {"rotation": {"strategy": "sometimes"}}, "spec.rotation.strategy", id="unknown-strategy"
        ),
        pytest.param(
            {"limits": {"maxSpeakChars": 5000}}, "spec.limits.maxSpeakChars", id="above-deepgram-limit"
        ),
        pytest.param({"surprise": True}, "spec.surprise", id="unknown-field"),
    ],
)
def test_schema_problems_name_the_field(spec_of: SpecOf, overrides: dict[str, Any], path: str) -> None:
    problems = api.validate_spec(spec_of(**overrides))
    assert problems
    assert all(problem.startswith(path) for problem in problems), problems


def test_every_broken_rule_of_one_object_is_reported(spec_of: SpecOf) -> None:
    problems = api.validate_spec(spec_of(replicas=1, autoscaling={}, resources={"requests": {}}))
    assert problems == [
        "spec.replicas: set either replicas or autoscaling, not both",
        "spec.resources.requests: CPU autoscaling needs resources.requests.cpu",
    ]


def test_a_valid_spec_has_no_problems(spec_of: SpecOf) -> None:
    spec = spec_of(
        autoscaling={"minReplicas": 2, "maxReplicas": 4, "targetActiveStreamsPerPod": 30},
        deepgram={
            "encoding": "mulaw",
            "sampleRate": 16000,
            "model": "aura-2-thalia-en",
            "allowedModels": ["aura-2-thalia-en"],
        },
        auth={"enabled": False, "clientTokensSecretRef": None},
        rollout={"maxSurge": 2},
        resources={"requests": {"memory": "256Mi"}},
    )
    assert api.validate_spec(spec) == []


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        pytest.param("aura-en", 0, id="plain"),
        pytest.param("a" * 50, 0, id="longest"),
        pytest.param("a" * 51, 1, id="too-long"),
        pytest.param("9voices", 1, id="starts-with-digit"),
        pytest.param("Aura", 1, id="upper-case"),
        pytest.param("-" * 51, 2, id="both"),
    ],
)
def test_names_must_fit_their_children(name: str, problems: int) -> None:
    assert len(api.validate_name(name)) == problems


@pytest.mark.parametrize(
    ("overrides", "fixed", "minimum"),
    [
        pytest.param({}, 1, 1, id="default"),
        pytest.param({"replicas": 3}, 3, 3, id="fixed"),
        pytest.param({"replicas": 0}, 0, 0, id="scaled-to-zero"),
        pytest.param({"autoscaling": {"minReplicas": 4, "maxReplicas": 8}}, None, 4, id="autoscaled"),
    ],
)
def test_replica_counts_follow_replicas_or_autoscaling(
    spec_of: SpecOf, overrides: dict[str, Any], fixed: int | None, minimum: int
) -> None:
    spec = api.parse_spec(spec_of(**overrides))
    assert spec.fixed_replicas == fixed
    assert spec.min_pods == minimum


@pytest.mark.parametrize(
    ("autoscaling", "cpu"),
    [
        pytest.param({}, 70, id="cpu-by-default"),
        pytest.param({"targetActiveStreamsPerPod": 20}, None, id="streams-only"),
        pytest.param({"targetCPUUtilizationPercentage": 55}, 55, id="cpu-given"),
        pytest.param({"targetActiveStreamsPerPod": 20, "targetCPUUtilizationPercentage": 55}, 55, id="both"),
    ],
)
def test_cpu_target_defaults_only_without_any_target(autoscaling: dict[str, Any], cpu: int | None) -> None:
    assert api.AutoscalingSpec.model_validate(autoscaling).cpu_target_percent == cpu


def test_backend_needs_a_uid_to_own_children(spec_of: SpecOf) -> None:
    from ttsfleet.operator.rendering import OwnerRef

    backend = api.TTSBackend.from_body({"metadata": {"name": "aura-en"}, "spec": spec_of()})
    with pytest.raises(ValueError, match="no uid"):
        OwnerRef.of(backend)


def test_stored_status_keeps_fields_others_wrote() -> None:
    status = api.TTSBackendStatus.model_validate({"observedGeneration": 2, "kopf": {"progress": {}}})
    assert status.observed_generation == 2


@pytest.mark.parametrize("module", ["ttsfleet.operator.api", "ttsfleet.operator.rendering"])
def test_public_names_are_unique_and_importable(module: str) -> None:
    import importlib

    # The order is ruff's (RUF022: constants, classes, functions), checked by `make lint`.
    package = importlib.import_module(module)
    assert len(set(package.__all__)) == len(package.__all__)
    assert all(hasattr(package, name) for name in package.__all__)
