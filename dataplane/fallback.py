"""REST `POST /v1/speak` upstream over httpx: the REST relay and the WS fallback. Only httpx user.

Answers stream; non-2xx statuses and transport errors are translated into the gateway's error tree
here. Raw PCM must be asked for with `container=none`, since REST wraps PCM in WAV by default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx

from ttsfleet.dataplane import errors
from ttsfleet.dataplane.seams import RestAnswer
from ttsfleet.protocol import REQUEST_ID_HEADERS, Container, ErrorBody, SpeakOptions, read_response_header

SPEAK_PATH = "/v1/speak"
CHUNK_BYTES = 16 * 1024


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn httpx's errors into ours, chained; timeouts first, they are transport errors too."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise errors.UpstreamTimeout(f"upstream REST timed out: {type(error).__name__}") from error
    except httpx.TransportError as error:
        raise errors.UpstreamUnavailable(f"upstream REST failed: {type(error).__name__}") from error


class HttpRestSpeaker:
    """Speaks through one shared connection pool to `base_url`."""

    def __init__(self, base_url: str, connect_s: float, read_s: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=connect_s, read=read_s, write=connect_s, pool=connect_s),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @asynccontextmanager
    async def speak(self, options: SpeakOptions, text: str, key: str) -> AsyncIterator[RestAnswer]:
        query = options.to_query()
        if options.container is Container.NONE:
            query += f"&container={Container.NONE.value}"
        request = self._client.build_request(
            "POST",
            f"{self._base_url}{SPEAK_PATH}?{query}",
            json={"text": text},
            headers={"Authorization": f"Token {key}"},
        )
        with translated_errors():
            response = await self._client.send(request, stream=True)
        try:
            if response.status_code >= 300:
                with translated_errors():
                    raw = await response.aread()
                body = ErrorBody.parse(raw)
                raise errors.error_for_status(response.status_code, (body.err_msg if body else "")[:200])
            yield RestAnswer(
                content_type=response.headers.get("content-type", options.audio_format.content_type),
                request_id=read_response_header(response.headers, REQUEST_ID_HEADERS) or "",
                chunks=_chunks(response),
            )
        finally:
            await response.aclose()


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    with translated_errors():
        async for chunk in response.aiter_raw(CHUNK_BYTES):
            if chunk:
                yield chunk
