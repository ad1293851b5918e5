"""The package's task owner: named tasks, failures logged, everything cancelled and awaited on close."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from ttsfleet.supervision import Supervisor


async def test_a_task_is_named_for_its_owner_and_forgotten_when_done() -> None:
    supervisor = Supervisor("pool")
    task = supervisor.spawn("refill", asyncio.sleep(0))
    assert task.get_name() == "pool:refill"
    await task
    assert supervisor.running == 0


async def test_a_failing_task_is_logged_with_its_name() -> None:
    async def fail() -> None:
        raise ValueError("upstream refused")

    supervisor = Supervisor("gateway")
    with structlog.testing.capture_logs() as logs:
        task = supervisor.spawn("token-poll", fail())
        await asyncio.gather(task, return_exceptions=True)  # after the supervisor's callback, added first
    assert [(line["log_level"], line["task"]) for line in logs] == [("error", "gateway:token-poll")]


async def test_close_cancels_and_awaits_every_task_then_refuses_more() -> None:
    supervisor = Supervisor("gateway")
    forever = supervisor.spawn("poll", asyncio.Event().wait())
    await supervisor.close()
    assert forever.cancelled()
    assert supervisor.running == 0
    coroutine = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="supervisor gateway is closed"):
        supervisor.spawn("late", coroutine)
