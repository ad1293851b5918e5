"""REST `POST /v1/speak` upstream over httpx: the REST relay and the WS fallback. Only httpx user.

Answers stream; non-2xx statuses and transport errors are translated into the gateway's error tree
here; a client error keeps upstream's status and body, to be relayed as they are. Every option
Deepgram acts on or bills by is forwarded (`SpeakOptions.to_rest_query`), `callback` included:
Deepgram calls that URL itself, never this gateway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx

from ttsfleet.dataplane import errors
from ttsfleet.dataplane.seams import RestAnswer
from ttsfleet.protocol import REQUEST_ID_HEADERS, ErrorBody, SpeakOptions, read_response_header
from ttsfleet.protocol.headers import ERROR_HEADER

SPEAK_PATH = "/v1/speak"
CHUNK_BYTES = 16 * 1024
MAX_ERROR_BODY_BYTES = 64 * 1024  # an error body is a small JSON object; more is cut, not buffered


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
        query = options.to_rest_query()
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
                    raw = await _bounded_body(response)
                body = ErrorBody.parse(raw)
                answer = errors.UpstreamAnswer(
                    response.status_code,
                    raw,
                    response.headers.get("content-type", "application/json"),
                    read_response_header(response.headers, REQUEST_ID_HEADERS)
                    or (body.request_id if body else ""),
                    response.headers.get(ERROR_HEADER, ""),
                )
                raise errors.error_for_status(
                    response.status_code, (body.err_msg if body else "")[:200], answer
                )
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


async def _bounded_body(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes(CHUNK_BYTES):
        body.extend(chunk[: MAX_ERROR_BODY_BYTES - len(body)])
        if len(body) >= MAX_ERROR_BODY_BYTES:
            break
    return bytes(body)
