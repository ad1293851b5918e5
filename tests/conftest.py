"""Suite-wide fixtures: real emulator processes, shared where a test does not change their state."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess, running_emulator

TASK_SETTLE_TURNS = 10  # loop turns a cancelled task gets to finish before it counts as left running


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every coroutine test gets `no_leftover_tasks` as its first fixture, so its check runs after every
    other fixture of the test has been torn down."""
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.fixturenames.insert(0, "no_leftover_tasks")


@pytest.fixture
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running: the loop's teardown would cancel them silently, and
    a task nobody awaits is work nobody supervises (in the code under test as much as in the test)."""
    yield
    current = asyncio.current_task()
    for _ in range(TASK_SETTLE_TURNS):  # let tasks that were just cancelled or woken finish
        leftover = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
        if not leftover:
            return
        await asyncio.sleep(0)
    for task in leftover:
        task.cancel()
    await asyncio.gather(*leftover, return_exceptions=True)
    described = sorted(f"{task.get_name()} ({task.get_coro()!r})" for task in leftover)
    pytest.fail("asyncio tasks left running: " + ", ".join(described), pytrace=False)
