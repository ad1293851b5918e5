"""The operator Deployment the chart renders starts a `ttsfleet operator` that accepts its arguments."""

from __future__ import annotations

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
