"""Suite-wide fixtures: real emulator processes, shared where a test does not change their state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.controlplane import control_plane
from tests.support.servers import ServerProcess, running_emulator

__all__ = ["control_plane"]  # the real control plane, shared by every suite that needs it


@pytest.fixture(scope="session")
def process_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every server process of the run writes its log (read by the log-secrecy tests)."""
    return tmp_path_factory.mktemp("process-logs")


@pytest.fixture(scope="session")
def shared_emulator(process_logs: Path) -> Iterator[ServerProcess]:
    """One instant-latency emulator for tests that only speak to it and reset it first."""
    with running_emulator(process_logs, name="shared-emulator") as server:
        yield server


@pytest.fixture
def emulator(shared_emulator: ServerProcess) -> ServerProcess:
    """The shared emulator, its counters, faults and created keys reset."""
    httpx.post(shared_emulator.base_url + "/_emulator/reset").raise_for_status()
    return shared_emulator
