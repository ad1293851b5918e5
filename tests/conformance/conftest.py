"""The conformance suite runs against every server that claims the speak protocol: the emulator and the
gateway (in front of the emulator), so a client of Deepgram works with either by changing only the URL
and the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import ServerProcess, running_emulator
from tests.support.speaking import SpeakTarget

EMULATOR_TOKEN = "conformance-key"
SLOW_FRAMES = "slow:frame_delay_ms=30"
# A gateway's default model is Deepgram's own unless a backend sets one: no setting here.
GATEWAY_ENV: dict[str, str] = {}


@pytest.fixture(scope="session")
def conformance_gateway(
    process_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """A gateway with an upstream of its own: its warm sockets must not show in other tests' counters."""
    with running_emulator(process_logs, name="conformance-upstream") as upstream:
        workdir = tmp_path_factory.mktemp("conformance-gateway")
        with running_gateway(
            process_logs, upstream, workdir, env=GATEWAY_ENV, name="conformance-gateway"
        ) as gw:
            yield gw


@pytest.fixture(scope="session")
def slow_upstream_gateway(
    process_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """A gateway whose upstream paces frames, so a Clear can land in the middle of an utterance."""
    with running_emulator(process_logs, ["--fault", SLOW_FRAMES], name="slow-upstream") as upstream:
        workdir = tmp_path_factory.mktemp("slow-gateway")
        with running_gateway(process_logs, upstream, workdir, env=GATEWAY_ENV, name="slow-gateway") as gw:
            yield gw


@pytest.fixture(params=["emulator", "gateway"])
def speak_target(request: pytest.FixtureRequest, emulator: ServerProcess) -> SpeakTarget:
    if request.param == "emulator":
        return SpeakTarget(ws_url=emulator.ws_url, http_url=emulator.base_url, token=EMULATOR_TOKEN)
    gateway: RunningGateway = request.getfixturevalue("conformance_gateway")
    return gateway.target


@pytest.fixture
def recorder_url(speak_target: SpeakTarget, emulator: ServerProcess, request: pytest.FixtureRequest) -> str:
    """The emulator recording what reached Deepgram's place: the target itself, or the gateway's upstream."""
    if speak_target.http_url == emulator.base_url:
        return emulator.base_url
    gateway: RunningGateway = request.getfixturevalue("conformance_gateway")
    return gateway.upstream.base_url


@pytest.fixture(params=["emulator", "gateway"])
def slow_speak_target(request: pytest.FixtureRequest, emulator: ServerProcess) -> SpeakTarget:
    if request.param == "emulator":
        return SpeakTarget(
            ws_url=emulator.ws_url,
            http_url=emulator.base_url,
            token=EMULATOR_TOKEN,
            extra_params=(("emulator_fault", SLOW_FRAMES),),
        )
    gateway: RunningGateway = request.getfixturevalue("slow_upstream_gateway")
    return gateway.target
