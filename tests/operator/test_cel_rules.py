"""The CRD's CEL rules and the operator's Python checks agree (CEL run by cel-python).

The apiserver applies schema defaults before it runs CEL, so the objects here are defaulted from
the generated schema first, exactly as the apiserver would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import celpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsfleet.devcluster.apiserver import admission
from ttsfleet.operator import api, crd

SpecOf = Callable[..., dict[str, Any]]
ENVIRONMENT = celpy.Environment()


def rules_with_self(schema: dict[str, Any], value: Any) -> Iterator[tuple[dict[str, str], Any]]:
    """Every CEL rule that applies to `value`, with the node it sees as `self`."""
    for rule in schema.get(api.base.CEL_RULES_KEY, ()):
        yield rule, value
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield from rules_with_self(child, value[name])
    if isinstance(value, list) and "items" in schema:
        for item in value:
            yield from rules_with_self(schema["items"], item)


def failing_cel_messages(spec: dict[str, Any]) -> set[str]:
    """Messages of the CEL rules a (defaulted) spec breaks."""
    schema = crd.spec_schema()
    defaulted = admission.with_defaults(schema, spec)
    failed = set()
    for rule, node in rules_with_self(schema, defaulted):
        program = ENVIRONMENT.program(ENVIRONMENT.compile(rule["rule"]))
        if not bool(program.evaluate({"self": celpy.json_to_cel(node)})):
            failed.add(rule["message"])
    return failed


def python_messages(spec: dict[str, Any]) -> set[str]:
    return {problem.split(": ", 1)[1] for problem in api.validate_spec(spec)}


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="minimal"),
        pytest.param({"replicas": 2, "autoscaling": {}}, id="replicas-and-autoscaling"),
        pytest.param({"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}, id="min-above-max"),
        pytest.param({"auth": {"clientTokensSecretRef": None}}, id="auth-without-tokens"),
        pytest.param({"auth": {"enabled": False, "clientTokensSecretRef": None}}, id="auth-disabled"),
        pytest.param({"deepgram": {"encoding": "alaw", "sampleRate": 48000}}, id="rate-not-for-encoding"),
        pytest.param({"deepgram": {"encoding": "alaw", "sampleRate": 16000}}, id="rate-for-encoding"),
        pytest.param({"deepgram": {"allowedModels": ["aura-2-zeus-en"]}}, id="model-not-allowed"),
        pytest.param({"deepgram": {"allowedModels": []}}, id="empty-allow-list"),
        pytest.param({"replicas": 3, "deepgram": {"socketBudget": 2}}, id="budget-below-replicas"),
        pytest.param({"deepgram": {"socketBudget": 1}}, id="budget-for-the-one-default-pod"),
        pytest.param(
            {"autoscaling": {"maxReplicas": 4}, "deepgram": {"socketBudget": 3}}, id="budget-below-max"
        ),
        pytest.param(
            {"autoscaling": {"maxReplicas": 4}, "deepgram": {"socketBudget": 4}}, id="budget-at-max"
        ),
        pytest.param(
            {"autoscaling": {}, "resources": {"requests": {"memory": "256Mi"}}}, id="cpu-without-request"
        ),
        pytest.param(
            {"autoscaling": {"targetActiveStreamsPerPod": 9}, "resources": {"requests": {"memory": "256Mi"}}},
            id="streams-without-cpu-request",
        ),
    ],
)
def test_each_cel_rule_fails_exactly_when_its_python_twin_does(
    spec_of: SpecOf, overrides: dict[str, Any]
) -> None:
    spec = spec_of(**overrides)
    assert failing_cel_messages(spec) == python_messages(spec)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("aura-en", True, id="plain"),
        pytest.param("Aura", False, id="upper-case"),
        pytest.param("a" * 51, False, id="too-long"),
    ],
)
def test_name_rule_matches_validate_name(name: str, valid: bool) -> None:
    rule = crd.NAME_RULE
    program = ENVIRONMENT.program(ENVIRONMENT.compile(rule.rule))
    verdict = bool(program.evaluate({"self": celpy.json_to_cel({"metadata": {"name": name}})}))
    assert verdict is valid
    assert rule.check(name) is valid


specs = st.fixed_dictionaries(
    {},
    optional={
        "replicas": st.integers(0, 5),
        "autoscaling": st.fixed_dictionaries(
            {},
            optional={
                "minReplicas": st.integers(1, 6),
                "maxReplicas": st.integers(1, 6),
                "targetActiveStreamsPerPod": st.integers(1, 50),
                "targetCPUUtilizationPercentage": st.integers(1, 100),
            },
        ),
        "deepgram": st.fixed_dictionaries(
            {},
            optional={
                "encoding": st.sampled_from(["linear16", "mulaw", "alaw"]),
                "sampleRate": st.sampled_from([8000, 16000, 24000, 32000, 48000]),
                "model": st.sampled_from(["aura-2-thalia-en", "aura-2-zeus-en"]),
                "socketBudget": st.integers(1, 12),
                "allowedModels": st.lists(
                    st.sampled_from(["aura-2-thalia-en", "aura-asteria-en"]), unique=True
                ),
            },
        ),
        "auth": st.fixed_dictionaries({"enabled": st.booleans(), "clientTokensSecretRef": st.none()}),
        "resources": st.fixed_dictionaries(
            {"requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), st.just("1"))}
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(overrides=specs)
def test_cel_and_python_agree_on_random_specs(overrides: dict[str, Any]) -> None:
    base = {
        "image": "ghcr.io/ttsfleet/ttsfleet:0.1.0",
        "deepgram": {"apiKeySecretRef": {"name": "deepgram"}},
        "auth": {"clientTokensSecretRef": {"name": "fleet-tokens"}},
    }
    spec = {**base, **overrides, "deepgram": {**base["deepgram"], **overrides.get("deepgram", {})}}
    if spec["auth"].get("clientTokensSecretRef", "") is None:
        spec["auth"] = {"enabled": spec["auth"]["enabled"]}
    cel = failing_cel_messages(spec)
    python = python_messages(spec)
    # The Python checks stop at the innermost broken object; CEL reports every rule at once.
    assert python <= cel
    assert bool(python) == bool(cel)
