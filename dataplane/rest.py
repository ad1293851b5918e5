"""REST `POST /v1/speak`: admitted like a socket, synthesized over the REST upstream, streamed back.

Headers go out only once the first audio is ready, so upstream failures before that become proper
error statuses; a failure after it ends the stream early. `x-ttsfleet-cache` says hit or miss.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from ttsfleet.dataplane import admission, errors, limits
from ttsfleet.dataplane.gateway import Gateway
from ttsfleet.protocol import ErrorCode, SpeakOptions, Transport

log = structlog.get_logger(__name__)

QUEUE_CHUNKS = 32  # audio chunks between upstream and a slow HTTP client; the upstream read waits beyond
_DONE = object()


class _StreamSink:
    """Audio from the synthesizer to the response body, through a bounded queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_CHUNKS)
        self.started = asyncio.Event()
        self.content_type = ""
        self.source = ""
        self._bytes_sent = 0
        self.error: errors.GatewayError | None = None

    @property
    def bytes_sent(self) -> int:
        return self._bytes_sent

    async def begin(self, content_type: str, source: str) -> None:
        self.content_type, self.source = content_type, source
        self.started.set()

    async def audio(self, chunk: bytes) -> None:
        await self.queue.put(chunk)
        self._bytes_sent += len(chunk)


async def serve(gateway: Gateway, request: Request) -> Response:
    request_id = admission.new_request_id()
    client_id = admission.client_request_id(request.headers.get("x-request-id"))
    headers = {"dg-request-id": request_id, "x-ttsfleet-pod": gateway.pod}
    with structlog.contextvars.bound_contextvars(request_id=request_id, client_request_id=client_id):
        try:
            options, text, token_id = await _admit(gateway, request)
        except admission.Refusal as refusal:
            return refused(gateway, refusal, request_id, headers)
        sink = _StreamSink()
        producer = gateway.tasks.spawn("rest-speak", _produce(gateway, options, text, sink, token_id))
        gateway.metrics.utterance_started()
        started = gateway.tasks.spawn("rest-started", sink.started.wait())
        try:
            await asyncio.wait({producer, started}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            producer.cancel()
            gateway.metrics.utterance_ended()
            raise
        finally:
            started.cancel()
        if not sink.started.is_set():
            gateway.metrics.utterance_ended()
            failure = sink.error or errors.GatewayError("synthesis failed")
            answer = admission.Refusal(failure.err_code, str(failure)[:200] or "synthesis failed")
            return Response(
                answer.body(request_id), failure.http_status, answer.headers(headers), "application/json"
            )
        headers |= {
            "dg-model-name": options.model,
            "dg-char-count": str(len(text)),
            "x-ttsfleet-cache": "hit" if sink.source == "cache" else "miss",
        }
        content_type = sink.content_type or options.audio_format.content_type
        return StreamingResponse(_body(gateway, sink, producer), headers=headers, media_type=content_type)


def refused(
    gateway: Gateway, refusal: admission.Refusal, request_id: str, headers: dict[str, str]
) -> Response:
    """The JSON error answer to a refused request or upgrade, counted and logged once."""
    gateway.metrics.refusals.labels(status=str(refusal.status)).inc()
    log.info("request refused", status=refusal.status, err_code=refusal.err_code.value)
    return Response(refusal.body(request_id), refusal.status, refusal.headers(headers), "application/json")


async def _produce(
    gateway: Gateway, options: SpeakOptions, text: str, sink: _StreamSink, token_id: str | None
) -> None:
    try:
        await gateway.synthesizer.speak(options, text, sink, websocket=False, token_id=token_id)
    except errors.GatewayError as error:
        sink.error = error  # before the first byte: the handler answers with its status
    finally:
        if sink.started.is_set():
            await sink.queue.put(_DONE)


async def _body(gateway: Gateway, sink: _StreamSink, producer: asyncio.Task[Any]) -> AsyncIterator[bytes]:
    try:
        while True:
            item = await sink.queue.get()
            if item is _DONE:
                return
            assert isinstance(item, bytes)
            yield item
    finally:
        gateway.metrics.utterance_ended()
        if not producer.done():
            producer.cancel()


async def _admit(gateway: Gateway, request: Request) -> tuple[SpeakOptions, str, str | None]:
    facts = gateway.facts()
    admission.check_serving(facts.draining, facts.fingerprint is not None, facts.credential_valid is False)
    auth = admission.check_auth(gateway.tokens, request.headers.get("authorization"), None)
    options = admission.resolve_options(dict(request.query_params), Transport.REST, gateway.settings.speak)
    text = _read_text(request.headers.get("content-type", ""), await request.body())
    if not text.strip():
        raise admission.Refusal(ErrorCode.EMPTY_TEXT, "Text must not be empty.")
    max_chars = gateway.settings.limits.max_speak_chars
    if len(text) > max_chars:
        raise admission.Refusal(
            ErrorCode.TEXT_TOO_LONG, f"Text has {len(text)} characters; the limit is {max_chars}."
        )
    try:
        text = limits.clean_text(text)
        gateway.limiter.charge(auth.token_id, len(text))
    except errors.ClientFault as fault:
        raise admission.Refusal(fault.err_code, str(fault)) from None
    return options, text, auth.token_id


def _read_text(content_type: str, body: bytes) -> str:
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == "application/json":
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("text"), str):
                raise admission.Refusal(
                    ErrorCode.BAD_REQUEST, 'Body must be a JSON object with a string "text".'
                )
            return str(data["text"])
        if media == "text/plain":
            return body.decode()
    except (ValueError, UnicodeDecodeError):
        raise admission.Refusal(ErrorCode.BAD_REQUEST, "Body is not valid JSON or UTF-8.") from None
    raise admission.Refusal(
        ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"Unsupported content type {media or 'none'!r}."
    )
