"""Cancelling a control loop's task in the same pass of the event loop as a wake-up, and seeing it stop.

Python 3.11's `asyncio.wait_for` dropped such a cancellation (CPython gh-86296): a loop parked in it ran
on, and its owner never finished stopping. The lint now bans `wait_for`; these tests keep the behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

STOP_DEADLINE_S = 10.0


async def cancel_as_it_wakes(task: asyncio.Task[Any], wake: Callable[[], None]) -> None:
    """Wake the loop and cancel its task in one pass; fail unless the task ends cancelled in time."""
    wake()
    task.cancel()
    # Waited on without cancelling it again: a second cancel could not end a loop that drops them.
    stopped, _ = await asyncio.wait({task}, timeout=STOP_DEADLINE_S)
    assert stopped, f"{task.get_name()} still ran {STOP_DEADLINE_S} s after it was cancelled"
    assert task.cancelled()
