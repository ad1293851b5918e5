"""Open speak sockets with retries: jittered backoff on transient refusals and closes, none on fatal ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from . import backoff, errors, speak_client

log = logging.getLogger(__name__)

Opener = Callable[[str, str, float], Awaitable[speak_client.SpeakConnection]]
Sleeper = Callable[[float], Awaitable[None]]


class Connector:
    """Knows where to connect and how hard to try; every socket the extension opens comes from here."""

    def __init__(
        self,
        url: str,
        token: str,
        timeout_s: float,
        attempts: int,
        delays: backoff.Backoff,
        opener: Opener = speak_client.open_connection,
        sleep: Sleeper = asyncio.sleep,
    ) -> None:
        self._url = url
        self._token = token
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._delays = delays
        self._opener = opener
        self._sleep = sleep

    async def open(
        self, after_failure: bool = False, attempts: int | None = None
    ) -> speak_client.SpeakConnection:
        """A new socket; `after_failure` waits a jittered delay first (a failed socket is being replaced)."""
        last: errors.SpeakError | None = None
        for attempt in range(attempts or self._attempts):
            if attempt > 0 or after_failure:
                retry_after = last.retry_after_s if isinstance(last, errors.HandshakeRefused) else None
                await self._sleep(self._delays.delay_s(attempt, retry_after))
            try:
                return await self._opener(self._url, self._token, self._timeout_s)
            except errors.SpeakError as exc:
                if not exc.retryable:
                    raise
                log.info("speak socket attempt %d failed: %s", attempt + 1, exc)
                last = exc
        assert last is not None
        raise last
