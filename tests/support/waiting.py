"""Waiting on a condition with a deadline: the suites' only way to wait for another process or task.

A condition is polled until it returns something truthy, which is handed back; at the deadline the
test fails, naming what it awaited. The poll interval is a pause between checks, never a
synchronisation: the deadline bounds the wait, the condition decides when it ends.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

DEADLINE_S = 10.0
INTERVAL_S = 0.02

Described = str | Callable[[], str]


def wait_for(
    condition: Callable[[], Any],
    deadline_s: float = DEADLINE_S,
    what: Described = "condition",
    interval_s: float = INTERVAL_S,
) -> Any:
    """Poll the blocking `condition` until it returns something truthy (returned); fail at the deadline,
    saying `what` was awaited (a callable is asked then, so it can describe the state it found)."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(_timed_out(deadline_s, what))
        time.sleep(interval_s)


async def wait_until(
    condition: Callable[[], Awaitable[Any] | Any],
    deadline_s: float = DEADLINE_S,
    what: Described = "condition",
    interval_s: float = INTERVAL_S,
) -> Any:
    """`wait_for` in a loop: `condition` may return an awaitable (awaited) or a value, and must not block.

    The deadline runs on the loop's clock, so suites on virtual loop time wait virtual seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(_timed_out(deadline_s, what))
        await asyncio.sleep(interval_s)


async def eventually(
    condition: Callable[[], Any], deadline_s: float = DEADLINE_S, what: Described = "condition"
) -> Any:
    """`wait_until` for a blocking `condition` (an HTTP call to a process): each check runs in a thread,
    so the loop keeps serving meanwhile."""
    return await wait_until(lambda: asyncio.to_thread(condition), deadline_s, what)


def _timed_out(deadline_s: float, what: Described) -> str:
    described = what() if callable(what) else what
    return f"timed out after {deadline_s} s waiting for {described}"
