"""The operator Deployment the chart renders starts a `ttsfleet operator` that accepts its arguments."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.helm import Manifest, one
from ttsfleet import cli
from ttsfleet.operator import running
from ttsfleet.operator.settings import OperatorSettings


def _operator_container(manifests: list[Manifest]) -> dict:  # type: ignore[type-arg]
    deployment = one(manifests, "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[OperatorSettings]:
    """Capture the settings `ttsfleet operator` would run with, instead of running kopf."""
    seen: list[OperatorSettings] = []
    monkeypatch.setattr(running, "run", seen.append)
    return seen


@pytest.mark.parametrize("mode", ["default_manifests", "cluster_manifests", "namespaced_manifests"])
def test_the_rendered_operator_command_line_is_accepted(
    mode: str, request: pytest.FixtureRequest, started: list[OperatorSettings]
) -> None:
    container = _operator_container(request.getfixturevalue(mode))
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[:2] == ["ttsfleet", "operator"]
    result = CliRunner().invoke(cli.app, command[1:])
    assert result.exit_code == 0, result.output
    (settings,) = started
    metrics_flag = next(arg for arg in command if arg.startswith("--metrics-port="))
    assert settings.metrics_port == int(metrics_flag.split("=")[1])
    if mode == "namespaced_manifests":
        assert settings.namespaces
    else:
        assert not settings.namespaces


def _selects(selector: dict, labels: dict) -> bool:  # type: ignore[type-arg]
    return all(labels.get(key) == value for key, value in (selector.get("matchLabels") or {}).items())


def _admits(policy: dict, namespace_labels: dict, pod_labels: dict, port: int) -> bool:  # type: ignore[type-arg]
    """Whether a NetworkPolicy's ingress lets a pod (matchLabels-only peers) reach `port`."""
    for rule in policy["spec"]["ingress"]:
        if not any(entry["port"] == port for entry in rule.get("ports") or [{"port": port}]):
            continue
        for peer in rule["from"]:
            if (
                "namespaceSelector" in peer
                and _selects(peer["namespaceSelector"], namespace_labels)
                and _selects(peer.get("podSelector") or {}, pod_labels)
            ):
                return True
    return False


@pytest.mark.parametrize("mode", ["default_manifests", "namespaced_manifests"])
def test_backends_network_policies_admit_the_operators_probes(
    mode: str, request: pytest.FixtureRequest, started: list[OperatorSettings]
) -> None:
    from tests.support.helm import RELEASE_NAMESPACE
    from ttsfleet.operator import api, rendering

    manifests = request.getfixturevalue(mode)
    container = _operator_container(manifests)
    result = CliRunner().invoke(cli.app, [*container.get("command", []), *container["args"]][1:])
    assert result.exit_code == 0, result.output
    (settings,) = started
    pod_labels = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    spec: dict[str, Any] = {
        "image": "ghcr.io/ttsfleet/dataplane:0.1.0",
        "deepgram": {"apiKeySecretRef": {"name": "deepgram"}},
        "auth": {"enabled": False},
        "networkPolicy": {"enabled": True},
    }
    backend = api.TTSBackend.from_body({"metadata": {"name": "aura-en", "namespace": "voice"}, "spec": spec})
    policy = rendering.render_network_policy(
        backend, rendering.OwnerRef(name="aura-en", uid="u"), settings.cluster_network
    )
    assert policy is not None
    operator_namespace = {"kubernetes.io/metadata.name": RELEASE_NAMESPACE}
    assert _admits(policy, operator_namespace, pod_labels, settings.statusz_port)
    assert not _admits(
        policy, {"kubernetes.io/metadata.name": "elsewhere"}, pod_labels, settings.statusz_port
    )
    dns = policy["spec"]["egress"][0]
    assert {"ipBlock": {"cidr": "169.254.20.10/32"}} in dns["to"]
    assert {port["port"] for port in dns["ports"]} == {53, 5353}
