"""Which control plane `dev up` and `make demo` run on, and the line that says so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ttsfleet.devcluster import fleet
from ttsfleet.devcluster.controlplane import binaries
from ttsfleet.devcluster.metricsserver import build as metrics_server_build
from ttsfleet.devcluster.realfleet import metrics_server_note


def test_auto_takes_the_real_control_plane_when_its_programs_are_built() -> None:
    binaries.locate()  # built by `make controlplane`, which `make test` runs first
    kind, line = fleet.resolve_control_plane("auto")
    assert kind == "real"
    assert f"real Kubernetes {binaries.kubernetes_version()}" in line


def test_without_the_programs_auto_falls_back_to_the_embedded_api_and_says_how_to_get_the_real_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(binaries.CACHE_VARIABLE, str(tmp_path / "empty-cache"))
    monkeypatch.delenv(binaries.ASSETS_VARIABLE, raising=False)
    kind, line = fleet.resolve_control_plane("auto")
    assert kind == "embedded"
    assert "embedded API" in line and "make controlplane" in line
    with pytest.raises(binaries.MissingControlPlane, match="make controlplane"):
        fleet.resolve_control_plane("real")
    assert fleet.resolve_control_plane("embedded")[0] == "embedded"


def test_dev_up_says_in_one_line_when_metrics_server_is_not_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics_server_build.locate()  # built by `make metrics-server`: the fleet starts it, nothing to say
    assert metrics_server_note() is None
    monkeypatch.setenv(metrics_server_build.CACHE_VARIABLE, str(tmp_path / "empty-cache"))
    note = metrics_server_note()
    assert note is not None and "\n" not in note
    assert "missing resource metrics" in note and "make metrics-server" in note


def test_dev_up_refuses_an_unknown_control_plane_and_a_missing_real_one(tmp_path: Path) -> None:
    def dev_up(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ttsfleet", "dev", "up", "--state-dir", str(tmp_path / "dev"), *args],
            env={**os.environ, "COLUMNS": "200", **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    unknown = dev_up("--control-plane", "kind")
    assert unknown.returncode == 2 and "real, embedded or auto" in unknown.stderr
    missing = dev_up("--control-plane", "real", **{binaries.CACHE_VARIABLE: str(tmp_path / "none")})
    assert missing.returncode == 1 and "make controlplane" in missing.stderr
    assert not (tmp_path / "dev" / "state.json").exists()
