"""Background tasks of the local fleet's long-running loops: logged when they fail, held until done.

Not the package's `ttsfleet.supervision.Supervisor`: the local fleet logs through stdlib `logging`, which
`ttsfleet demo` sends to its log file beside a live terminal view, while the supervisor writes structlog
lines, which here would land on that terminal. And the owner keeps the task set itself, so tasks it
awaits on its own (the node agent's pod stops) are cancelled with the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


def spawn(tasks: set[asyncio.Task[None]], coroutine: Coroutine[Any, Any, None], name: str) -> None:
    """Run `coroutine` in a task kept in `tasks` until it ends; a failure is logged, not lost."""

    async def guarded() -> None:
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("task %s failed", name)

    task = asyncio.create_task(guarded(), name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
