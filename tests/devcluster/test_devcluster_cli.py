"""`ttsfleet dev …` as a user runs it: detached up, status, kubeconfig, down, and the fleet end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.recognition import TEST_PHRASES, recognise
from ttsfleet import wavfile
from ttsfleet.devcluster import fleet

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EXAMPLE_TOKEN = "REPLACE-WITH-A-LONG-RANDOM-FLEET-TOKEN"  # examples/secrets-aura-en.yaml


def ttsfleet(*args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ttsfleet", *args],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def kubectl(kubeconfig: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "dev"
    yield directory
    fleet.stop_detached(directory)  # whatever the test did, nothing keeps running


def test_dev_up_detached_then_status_kubeconfig_and_down(state_dir: Path) -> None:
    up = ttsfleet("dev", "up", "--detach", "--instant", "--no-operator", "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    state = fleet.FleetState.read(state_dir)
    assert state is not None and fleet.is_alive(state.pid)
    assert state.upstream_url is not None and state.operator_pid is None

    status = ttsfleet("dev", "status", "--state-dir", str(state_dir))
    assert status.returncode == 0, status.stderr
    assert state.api_url in status.stdout and "deployments" in status.stdout

    path = ttsfleet("dev", "kubeconfig", "--state-dir", str(state_dir))
    assert path.stdout.strip() == state.kubeconfig
    namespaces = kubectl(state.kubeconfig, "get", "namespaces", "-o", "name")
    assert "namespace/default" in namespaces.stdout.split()
    crds = kubectl(state.kubeconfig, "get", "crd", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/ttsbackends.ttsfleet.io" in crds.stdout

    down = ttsfleet("dev", "down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert not fleet.is_alive(state.pid)
    assert fleet.FleetState.read(state_dir) is None
    assert ttsfleet("dev", "status", "--state-dir", str(state_dir)).returncode == 1


def test_examples_become_a_ready_backend_that_speaks_through_its_service(
    state_dir: Path, tmp_path: Path
) -> None:
    up = ttsfleet("dev", "up", "--detach", "--instant", "--state-dir", str(state_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    state = fleet.FleetState.read(state_dir)
    assert state is not None and state.operator_pid is not None
    for name in ("namespace-voice.yaml", "secrets-aura-en.yaml", "ttsbackend-aura-en.yaml"):
        applied = kubectl(state.kubeconfig, "apply", "--validate=false", "-f", str(EXAMPLES / name))
        assert applied.returncode == 0, applied.stderr
    # kubectl waits by watching; Ready is only trusted with observedGeneration caught up (checked below).
    waited = kubectl(
        state.kubeconfig, "wait", "--for=condition=Ready", "ttsb/aura-en", "-n", "voice", "--timeout=90s"
    )
    assert waited.returncode == 0, waited.stderr + (state_dir / "logs" / "operator.log").read_text()[-3000:]
    generation = kubectl(
        state.kubeconfig,
        "get",
        "ttsb/aura-en",
        "-n",
        "voice",
        "-o",
        "jsonpath={.metadata.generation} {.status.observedGeneration}",
    ).stdout.split()
    assert generation[0] == generation[1]

    phrase = TEST_PHRASES[3]
    wav = tmp_path / "say.wav"
    said = ttsfleet(
        "say",
        phrase,
        "--backend",
        "aura-en.voice",
        "--state-dir",
        str(state_dir),
        "--token",
        EXAMPLE_TOKEN,
        "-o",
        str(wav),
    )
    assert said.returncode == 0, said.stdout + said.stderr
    fmt, pcm = wavfile.parse(wav.read_bytes())
    assert recognise(pcm, fmt.encoding, fmt.sample_rate, TEST_PHRASES) == phrase
