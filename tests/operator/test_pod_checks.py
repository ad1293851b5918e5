"""Specs the CRD admits but whose Deployment a real apiserver refuses are caught before anything is written.

Each case is also rendered without the check and handed to the embedded API's admission, which
answers as the apiserver's pod validation does: the check and the API agree on what is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ttsfleet.devcluster.apiserver import admission
from ttsfleet.operator import api, rendering
from ttsfleet.operator.rendering import OwnerRef

SpecOf = Callable[..., dict[str, Any]]
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
CASES = [
    pytest.param(
        {"resources": {"requests": {"cpu": "-1"}}}, "spec.resources.requests.cpu", id="negative-cpu"
    ),
    pytest.param(
        {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}},
        "spec.resources.requests.memory: must be less than or equal to memory limit",
        id="requests-above-limits",
    ),
    pytest.param(
        {"scheduling": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}},
        "spec.scheduling.tolerations[0].value: must be empty when operator is Exists",
        id="exists-with-value",
    ),
    pytest.param(
        {"scheduling": {"nodeSelector": {"bad key!": "x"}}},
        "spec.scheduling.nodeSelector: 'bad key!' is not a valid label key",
        id="malformed-node-selector-key",
    ),
    pytest.param(
        {"scheduling": {"affinity": {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": []}}}}},
        "nodeSelectorTerms: must have at least one node selector term",
        id="empty-node-selector-terms",
    ),
]


@pytest.mark.parametrize(("overrides", "problem"), CASES)
def test_the_spec_check_names_the_problem(spec_of: SpecOf, overrides: dict[str, Any], problem: str) -> None:
    problems = api.validate_spec(spec_of(**overrides))
    assert any(problem in found for found in problems), problems


@pytest.mark.parametrize(("overrides", "problem"), CASES)
def test_the_api_refuses_the_deployment_it_would_render(
    spec_of: SpecOf, overrides: dict[str, Any], problem: str
) -> None:
    spec = spec_of(**overrides)
    backend = api.TTSBackend.model_construct(
        metadata=api.ObjectMeta(name="aura-en", namespace="voice", uid="u"),
        spec=_unchecked(spec),
    )
    deployment = rendering.render_deployment(backend, OwnerRef(name="aura-en", uid="u"), "cfg", None)
    problems = admission.builtin_problems(deployment)
    assert problems, f"the embedded API would store {problem!r}"


def _unchecked(raw: dict[str, Any]) -> api.TTSBackendSpec:
    """The spec as a model without running the checks under test (what an unchecked operator renders)."""
    checked = api.TTSBackendSpec.model_validate({**raw, "resources": {}, "scheduling": {}})
    resources = raw.get("resources") or {}
    scheduling = raw.get("scheduling") or {}
    return checked.model_copy(
        update={
            "resources": api.ResourcesSpec.model_construct(
                requests=resources.get("requests", checked.resources.requests),
                limits=resources.get("limits", checked.resources.limits),
            ),
            "scheduling": checked.scheduling.model_copy(
                update={
                    "node_selector": scheduling.get("nodeSelector", {}),
                    "tolerations": scheduling.get("tolerations", []),
                    "affinity": scheduling.get("affinity", {}),
                }
            ),
        }
    )
