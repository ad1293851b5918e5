"""A deadline that moves with every frame but costs a timer only when it could fire.

`asyncio.Timeout.reschedule` cancels its timer and schedules a new one: two heap operations per audio
frame when a relay moves its deadline around each receive. A `MovingDeadline` only stores the new time;
its single timer, when it fires, looks at where the deadline is now and sleeps again until then, so a
relay whose frames keep coming pays about one timer per deadline span instead of two per frame.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType


class MovingDeadline:
    """Cancels the task that entered it once the armed time passes; `async with` turns that into
    TimeoutError, as `asyncio.timeout` does. Disarmed, it never fires."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._when = math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._expired = False

    def expired(self) -> bool:
        return self._expired

    def arm(self, when: float) -> None:
        """Fire at loop time `when` unless moved again before then."""
        if self._task is None:
            raise RuntimeError("MovingDeadline.arm outside its `async with`")
        self._when = when
        if self._timer is not None and self._timer.when() > when:
            self._timer.cancel()  # moved earlier than the timer: the only case that needs a new one
            self._timer = None
        if self._timer is None and not self._expired:
            self._timer = self._loop.call_at(when, self._check)

    def disarm(self) -> None:
        self._when = math.inf

    def _check(self) -> None:
        self._timer = None
        if self._when == math.inf or self._task is None:
            return  # disarmed: the next arm starts a timer again
        if self._loop.time() < self._when:
            self._timer = self._loop.call_at(self._when, self._check)
            return
        self._expired = True
        self._task.cancel()

    async def __aenter__(self) -> MovingDeadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("MovingDeadline needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task, self._task = self._task, None
        self._when = math.inf
        # uncancel() first, whatever ended the block: our cancel must not outlive it.
        expired_here = self._expired and task is not None and task.uncancel() <= self._cancelling
        if expired_here and kind is asyncio.CancelledError:
            raise TimeoutError from error
