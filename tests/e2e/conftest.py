"""One local fleet per test module (`ttsfleet dev up --detach --instant`), the example backend applied.

The fleet runs on the real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler
built by `make controlplane`; missing programs fail the tests): Deployments, ReplicaSets, EndpointSlices
and garbage collection are the real controllers', the operator acts as the chart's ServiceAccount.
`start_local_fleet` also starts one on the embedded API, for the scenario both must agree on.

The backend is examples/ with test-friendly rollout timings (the defaults make a rollout take half a
minute), its cache off (every utterance reaches the emulator, so rotated keys are really used) and a
character budget an agent loop does not exhaust. The emulator runs in open mode: any key it is given,
the rotated ones too, is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.cluster import Cluster, is_converged
from tests.e2e.load import linear16
from tests.support.recognition import TEST_PHRASES
from tests.support.waiting import wait_for
from ttsfleet import client
from ttsfleet.devcluster import balancer, fleet, serviceproxy
from ttsfleet.devcluster.controlplane import binaries

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NAMESPACE, NAME = "voice", "aura-en"
BACKEND = f"{NAME}.{NAMESPACE}"
TOKEN = "REPLACE-WITH-A-LONG-RANDOM-FLEET-TOKEN"  # examples/secrets-aura-en.yaml
MODEL = "aura-2-thalia-en"
SAMPLE_RATE = 24000
CONVERGE_DEADLINE_S = 60.0
# preStop covers the Service proxy's propagation delay (a terminating pod keeps getting new connections
# that long, as under kube-proxy) with a margin, as the CRD's default covers a cluster's; the embedded
# API's balancer lags as long.
PROPAGATION_DELAY_S = max(serviceproxy.DEFAULT_PROPAGATION_DELAY_S, balancer.DEFAULT_PROPAGATION_DELAY_S)
PRE_STOP_DELAY_S = int(PROPAGATION_DELAY_S) + 2
TEST_SPEC: dict[str, Any] = {
    "rollout": {"minReadySeconds": 1, "preStopDelaySeconds": PRE_STOP_DELAY_S, "drainTimeoutSeconds": 20},
    "cache": {"enabled": False},
    "limits": {"charsPerMinutePerToken": 1_000_000},
}


@dataclass
class LocalFleet:
    """A running local fleet and what the tests need to reach it."""

    state_dir: Path
    state: fleet.FleetState
    references: dict[str, bytes]
    operator_argv: list[str]
    operators: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def services_file(self) -> Path:
        return Path(self.state.services_file)

    def kill_operator(self) -> None:
        """SIGKILL the running operator (the fleet's own, or the last replacement) and wait for it."""
        if self.operators:
            self.operators[-1].kill()
            self.operators[-1].wait(10)
            return
        assert self.state.operator_pid is not None
        os.kill(self.state.operator_pid, signal.SIGKILL)
        wait_for(lambda: not fleet.is_alive(self.state.operator_pid or 0), 10, "the operator to die")

    def start_operator(self, metrics_port: int = 0) -> None:
        """A replacement operator with the fleet's own arguments (as a Deployment would restart it).

        `metrics_port` serves its /metrics there (the fleet's own operator serves none).
        """
        argv = [*self.operator_argv]
        argv[argv.index("--metrics-port") + 1] = str(metrics_port)
        self.operators.append(
            fleet.spawn_beside(self.state, argv, self.state_dir / "logs" / "operator-replacement.log")
        )

    def stop_operators(self) -> None:
        for process in self.operators:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def example_objects() -> list[dict[str, Any]]:
    """examples/ as objects, the backend's spec given the test timings."""
    objects: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            if body and body["kind"] == "TTSBackend":
                for key, value in TEST_SPEC.items():
                    body["spec"][key] = {**(body["spec"].get(key) or {}), **value}
            if body:
                objects.append(body)
    return objects


async def _references(upstream_url: str) -> dict[str, bytes]:
    """Each test phrase as the emulator says it (it is deterministic): what a whole utterance is."""
    references: dict[str, bytes] = {}
    async with client.SpeakClient(upstream_url, "any-key", linear16(SAMPLE_RATE, MODEL)) as session:
        for phrase in TEST_PHRASES:
            references[phrase] = (await session.speak(phrase)).audio
    return references


async def _apply_examples(state: fleet.FleetState) -> None:
    cluster = Cluster(state)
    try:
        for body in example_objects():
            await cluster.apply(body)
        await cluster.wait_backend(NAMESPACE, NAME, is_converged, CONVERGE_DEADLINE_S, "the backend Ready")
    finally:
        await cluster.aclose()


def _service_answers(state_dir: Path) -> bool:
    """The backend's Service, through the local proxy, reaches a ready gateway."""
    url = fleet.read_services(state_dir).get(BACKEND)
    if url is None:
        return False
    try:
        return httpx.get(url.replace("ws://", "http://", 1) + "/readyz", timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def start_local_fleet(state_dir: Path, control_plane: str) -> Iterator[LocalFleet]:
    """`dev up --detach --instant --control-plane <it>` with examples/ applied and converged; then down."""
    if control_plane == "real":
        try:
            binaries.locate()
        except binaries.MissingControlPlane as missing:
            pytest.fail(str(missing), pytrace=False)
    arguments = ["--instant", "--control-plane", control_plane]
    state = fleet.start_detached(state_dir, arguments, state_dir / "logs" / "fleet.log")
    running: LocalFleet | None = None
    try:
        assert state.control_plane == control_plane, state
        assert state.operator_pid is not None, "the local fleet started without its operator"
        assert state.upstream_url is not None
        references = asyncio.run(_references(state.upstream_url))
        running = LocalFleet(state_dir, state, references, list(state.operator_argv))
        asyncio.run(_apply_examples(state))
        # Ready is the pods' readiness; a Service answers once its endpoints reach the proxy, a moment
        # later on a loaded machine (as kube-proxy lags a real cluster): wait for that, not a connect race.
        wait_for(lambda: _service_answers(state_dir), CONVERGE_DEADLINE_S, f"the Service {BACKEND} to answer")
        yield running
    finally:
        if running is not None:
            running.stop_operators()
        fleet.stop_detached(state_dir)


@pytest.fixture(scope="module")
def local_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    """The fleet on the real control plane, examples/ applied and converged; `dev down` afterwards."""
    with start_local_fleet(tmp_path_factory.mktemp("e2e-fleet"), "real") as running:
        yield running


@pytest.fixture
async def cluster(local_fleet: LocalFleet) -> AsyncIterator[Cluster]:
    """An API client on the module's fleet."""
    api = Cluster(local_fleet.state)
    try:
        yield api
    finally:
        with contextlib.suppress(Exception):
            await api.aclose()
