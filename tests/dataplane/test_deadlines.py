"""The moving deadline in loop time: fires where it was last moved to, costs no timer per move."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ttsfleet.dataplane.deadlines import MovingDeadline

pytestmark = pytest.mark.looptime


async def test_it_fires_at_the_time_it_was_last_moved_to() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with MovingDeadline() as deadline:
            for _ in range(10):
                deadline.arm(loop.time() + 2.0)
                await asyncio.sleep(1.0)  # a frame every second: the deadline keeps moving away
            await asyncio.sleep(60)
    assert deadline.expired()
    assert loop.time() - started == pytest.approx(11.0)  # the last move, at second 9, plus 2


async def test_moved_earlier_it_fires_earlier() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with MovingDeadline() as deadline:
            deadline.arm(loop.time() + 10.0)
            deadline.arm(loop.time() + 2.0)
            await asyncio.sleep(60)
    assert loop.time() - started == pytest.approx(2.0)


async def test_disarmed_it_never_fires() -> None:
    loop = asyncio.get_running_loop()
    async with MovingDeadline() as deadline:
        deadline.arm(loop.time() + 1.0)
        deadline.disarm()
        await asyncio.sleep(5.0)
    assert not deadline.expired()


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    async def relay() -> None:
        async with MovingDeadline() as deadline:
            deadline.arm(asyncio.get_running_loop().time() + 5.0)
            await asyncio.sleep(60)

    task = asyncio.create_task(relay())
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_thousand_moves_within_one_span_cost_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at

    def counted(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__self__", None).__class__ is MovingDeadline:
            timers.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counted)
    async with MovingDeadline() as deadline:
        for _ in range(1000):
            deadline.arm(loop.time() + 2.0)
            await asyncio.sleep(0.001)  # a frame, then the deadline moves on
            deadline.disarm()
    assert len(timers) == 1  # asyncio.timeout's reschedule: a new timer for each of the 2,000 moves
