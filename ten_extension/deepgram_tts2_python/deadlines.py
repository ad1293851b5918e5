"""A deadline around an await that never swallows the caller's cancellation.

`asyncio.wait_for` on Python 3.10 and 3.11 returns the awaited result and drops a cancellation that
arrives in the same loop pass as that result (CPython gh-86296, fixed in 3.12), so a cancelled pump or
request could carry on. `asyncio.timeout` (3.11) keeps it, and so does its backport `async_timeout`,
used on the 3.10 some TEN images ship; there a deadline's `asyncio.TimeoutError` is not yet the
built-in `TimeoutError` this package catches, so it is raised as one.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):  # noqa: UP036 - the project targets 3.11, TEN's images may not
    from asyncio import timeout
else:  # pragma: no cover - the suite runs on 3.11; this was checked by hand on 3.10.13
    import asyncio
    import contextlib
    from collections.abc import AsyncIterator

    import async_timeout

    @contextlib.asynccontextmanager
    async def timeout(delay: float | None) -> AsyncIterator[None]:
        try:
            async with async_timeout.timeout(delay):
                yield
        except asyncio.TimeoutError as expired:  # noqa: UP041 - not yet TimeoutError on 3.10
            raise TimeoutError from expired


__all__ = ["timeout"]
