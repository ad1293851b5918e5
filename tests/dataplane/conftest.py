"""Gateway fixtures: real `ttsfleet dataplane` processes in front of real emulator processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dataplane.gateways import RunningGateway, running_gateway
from tests.support.servers import ServerProcess, running_emulator


@pytest.fixture(scope="module")
def module_emulator(process_logs: Path) -> Iterator[ServerProcess]:
    """An emulator for one test module (gateway pools keep sockets to it across tests)."""
    with running_emulator(process_logs, name="gateway-upstream") as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    process_logs: Path, module_emulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    """A gateway shared by the tests of a module that do not change its state."""
    with running_gateway(process_logs, module_emulator, tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture
def reset_upstream(module_emulator: ServerProcess) -> ServerProcess:
    httpx.post(module_emulator.base_url + "/_emulator/reset").raise_for_status()
    return module_emulator
