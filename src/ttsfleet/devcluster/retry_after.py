"""An httpx transport that sends a request again when the Kubernetes API answers 429 with Retry-After.

The real kube-apiserver does so while a resource's watch cache is (re)initializing, e.g. for a moment
after its CRD is created ("storage is (re)initializing", Retry-After: 1), and when priority and
fairness sheds load. A 429 means the request was not served, so any method may go again; client-go
does the same, up to ten times. Without a Retry-After header a 429 is returned as it came.
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

from ttsfleet.operator.errors import MAX_RETRY_AFTER_S, parse_retry_after

ATTEMPTS = 10  # as client-go's default


class RetryAfterTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; a 429 with Retry-After is waited out and the request sent again."""

    def __init__(self, inner: httpx.AsyncBaseTransport, attempts: int = ATTEMPTS) -> None:
        self._inner = inner
        self._attempts = attempts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(self._attempts - 1):
            response = await self._inner.handle_async_request(request)
            delay_s = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code != 429 or delay_s is None:
                return response
            await response.aclose()
            await asyncio.sleep(min(max(delay_s, 0.0), MAX_RETRY_AFTER_S))  # the server's own backoff
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def transport(verify: ssl.SSLContext | bool = True) -> RetryAfterTransport:
    """httpx's own transport (`verify`: TLS as the client would check it), retrying 429s."""
    return RetryAfterTransport(httpx.AsyncHTTPTransport(verify=verify, trust_env=False))
