"""The suites' waits: a truthy result ends the wait and is handed back; the deadline fails it by name."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.support.waiting import eventually, wait_for, wait_until


def test_wait_for_returns_the_first_truthy_result() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 3 and "third", 5.0, "the third check") == "third"


def test_wait_for_names_what_it_awaited_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for a state: never"):
        wait_for(lambda: False, 0.05, lambda: "a state: never")


async def test_wait_until_awaits_an_async_condition_and_returns_its_result() -> None:
    answers = iter([None, {}, {"ready": True}])

    async def ready() -> dict[str, bool] | None:
        await asyncio.sleep(0)
        return next(answers)

    assert await wait_until(ready, 5.0, "readiness") == {"ready": True}


async def test_wait_until_names_what_it_awaited_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for the pool to fill"):
        await wait_until(lambda: 0, 0.05, "the pool to fill")


async def test_eventually_checks_a_blocking_condition_outside_the_loop() -> None:
    def outside_the_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        return False

    assert await eventually(outside_the_loop, 5.0, "a check outside the loop") is True
