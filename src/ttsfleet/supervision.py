"""Ownership of background tasks: every task is named, tracked, and its unexpected exit logged.

A `Supervisor` is what a component holds instead of calling `create_task` and forgetting the result;
closing it cancels and awaits everything it still runs. It sits below the components so any of them
can own tasks this way (the gateway's pool and pollers do); the operator has none of its own, as kopf
runs its handlers, timers and daemons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Supervisor:
    """A set of named tasks with one owner."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, name: str, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coroutine` as a task named `<owner>:<name>`, logged if it fails."""
        if self._closed:
            coroutine.close()
            raise RuntimeError(f"supervisor {self.name} is closed")
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("task failed", task=task.get_name(), error=repr(error), exc_info=error)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every task and wait for all of them to end."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
