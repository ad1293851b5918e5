"""Waiting in benchmarks: poll an async check until it holds, with a deadline, and time the wait.

The benchmarks import the package, never the test suites, so they keep this one poll of their own
(the suites' is tests/support/waiting.py). The interval is the pause between checks; the deadline
bounds the wait and the check ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until(
    check: Callable[[], Awaitable[Any]],
    deadline_s: float,
    what: str,
    interval_s: float = 0.1,
    tolerated: tuple[type[Exception], ...] = (),
) -> Any:
    """Poll `check` until it returns something truthy (returned); a `tolerated` error counts as not
    yet. Past the deadline, TimeoutError naming `what`."""
    deadline = time.monotonic() + deadline_s
    while True:
        with contextlib.suppress(*tolerated):
            result = await check()
            if result:
                return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def seconds(wait: Awaitable[Any]) -> float:
    """How many seconds `wait` (an `until`, say) took."""
    start = time.monotonic()
    await wait
    return time.monotonic() - start
