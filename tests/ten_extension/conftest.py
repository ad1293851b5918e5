"""Fixtures for the TEN extension: the TEN stand-in on sys.path, and real emulator and gateway processes.

`stubs/` (ten_runtime, ten_ai_base) is put on sys.path here and nowhere else; see stubs/README.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

STUBS = Path(__file__).parent / "stubs"
if str(STUBS) not in sys.path:
    sys.path.insert(0, str(STUBS))

from tests.dataplane.gateways import FLEET_TOKEN, running_gateway  # noqa: E402
from tests.support.servers import ServerProcess, running_emulator  # noqa: E402
from tests.ten_extension.targets import EMULATOR_KEY, Target  # noqa: E402


@pytest.fixture(scope="module")
def extension_upstream(process_logs: Path) -> Iterator[ServerProcess]:
    with running_emulator(process_logs, name="extension-upstream") as server:
        yield server


@pytest.fixture(scope="module")
def extension_gateway(
    process_logs: Path, extension_upstream: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with running_gateway(
        process_logs, extension_upstream, tmp_path_factory.mktemp("extension-gateway"), name="ext-gateway"
    ) as gateway:
        yield gateway.process.ws_url


@pytest.fixture
def emulator_target(extension_upstream: ServerProcess) -> Target:
    """The emulator itself, counters and faults reset."""
    target = Target("emulator", extension_upstream.ws_url, EMULATOR_KEY, extension_upstream)
    target.reset_upstream()
    return target


@pytest.fixture
def gateway_target(extension_upstream: ServerProcess, extension_gateway: str) -> Target:
    """A real gateway in front of the emulator (its counters and faults reset)."""
    target = Target("gateway", extension_gateway, FLEET_TOKEN, extension_upstream)
    target.reset_upstream()
    return target


@pytest.fixture(params=["emulator", "gateway"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each conformance scenario runs straight against the emulator and through a real gateway."""
    chosen: Target = request.getfixturevalue(f"{request.param}_target")
    return chosen
