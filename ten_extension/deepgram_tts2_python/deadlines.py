"""A deadline around an await that never swallows the caller's cancellation.

`asyncio.wait_for` on Python 3.10 and 3.11 returns the awaited result and drops a cancellation that
arrives in the same loop pass as that result (CPython gh-86296, fixed in 3.12), so a cancelled pump or
request could carry on. `asyncio.timeout` (3.11) and its backport `async_timeout` (for the 3.10 some
TEN images ship) keep it.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):  # noqa: UP036 - the project targets 3.11, TEN's images may not
    from asyncio import timeout
else:  # pragma: no cover - the suite runs on 3.11
    from async_timeout import timeout

__all__ = ["timeout"]
