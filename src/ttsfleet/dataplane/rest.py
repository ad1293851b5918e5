"""REST `POST /v1/speak`: admitted like a socket, synthesized over the REST upstream, streamed back.

Headers go out only once the first audio is ready, so upstream failures before that become proper
error statuses; a failure after it ends the stream early. `x-ttsfleet-cache` says hit or miss.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from ttsfleet import logs
from ttsfleet.dataplane import admission, answers, errors, limits
from ttsfleet.dataplane.gateway import Gateway
from ttsfleet.protocol import ErrorCode, SpeakOptions, Transport, load_json

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

    def audio_now(self, chunk: bytes) -> bool:
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            return False
        self._bytes_sent += len(chunk)
        return True


async def serve(gateway: Gateway, request: Request) -> Response:
    request_id = admission.new_request_id()
    client_id = admission.client_request_id(request.headers.get("x-request-id"))
    headers = {"dg-request-id": request_id, "x-ttsfleet-pod": gateway.pod}
    with logs.bound(request_id=request_id, client_request_id=client_id):
        try:
            options, text, token_id = await _admit(gateway, request)
        except errors.GatewayError as refusal:  # admission's Refusal, or a ClientFault of the text
            return refused(gateway, refusal, request_id, headers)
        except ClientDisconnect:
            # Not a fault of ours: nothing to answer, and the answer could not be written anyway.
            log.info("client left before its request body ended")
            return Response(status_code=400)
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
            if isinstance(failure, errors.UpstreamRejected) and failure.answer is not None:
                return relayed(gateway, failure.answer, headers)
            return error_response(answers.http_answer(failure, request_id, headers))
        headers |= {
            "dg-model-name": options.model,
            "dg-char-count": str(len(text)),
            "x-ttsfleet-cache": "hit" if sink.source == "cache" else "miss",
        }
        content_type = sink.content_type or options.audio_format.content_type
        ending = _Ending(gateway, producer)
        return _CountedStream(ending, _body(sink), headers=headers, media_type=content_type)


def refused(
    gateway: Gateway, refusal: errors.GatewayError, request_id: str, headers: dict[str, str]
) -> Response:
    """The JSON error answer to a refused request or upgrade, counted and logged once."""
    answer = answers.http_answer(refusal, request_id, headers)
    gateway.metrics.refusals.labels(status=str(answer.status)).inc()
    log.info("request refused", status=answer.status, err_code=answer.err_code.value)
    return error_response(answer)


def error_response(answer: answers.HttpAnswer) -> Response:
    """The JSON error response `answers` decided."""
    return Response(answer.body, answer.status, answer.headers, "application/json")


def relayed(gateway: Gateway, answer: errors.UpstreamAnswer, headers: dict[str, str]) -> Response:
    """Deepgram's own refusal, status, body, `dg-error` and request id as they came (clients branch on
    its `err_code`); the gateway's request id goes in `x-ttsfleet-request-id`."""
    gateway.metrics.refusals.labels(status=str(answer.status)).inc()
    log.info("upstream refusal relayed", status=answer.status, upstream_request_id=answer.request_id)
    relayed_headers = {**headers, "x-ttsfleet-request-id": headers["dg-request-id"]}
    relayed_headers["dg-request-id"] = answer.request_id or headers["dg-request-id"]
    if answer.error_header:
        relayed_headers["dg-error"] = answers.header_safe(answer.error_header)
    return Response(answer.body, answer.status, relayed_headers, media_type=answer.content_type)


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


async def _body(sink: _StreamSink) -> AsyncIterator[bytes]:
    while True:
        item = await sink.queue.get()
        if item is _DONE:
            return
        assert isinstance(item, bytes)
        yield item


class _Ending:
    """Ends a streamed utterance once: its count released, its producer stopped."""

    def __init__(self, gateway: Gateway, producer: asyncio.Task[Any]) -> None:
        self._gateway = gateway
        self._producer = producer
        self._ended = False

    def __call__(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._gateway.metrics.utterance_ended()
        if not self._producer.done():
            self._producer.cancel()


class _CountedStream(StreamingResponse):
    """A streamed answer whose utterance ends however the response does: sent, failed, or the client
    gone before the body began (then the body's generator never runs, and its `finally` neither)."""

    def __init__(self, ending: _Ending, body: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._ending = ending

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._ending()


async def _admit(gateway: Gateway, request: Request) -> tuple[SpeakOptions, str, str | None]:
    gateway.check_serving()
    auth = admission.check_auth(gateway.tokens, request.headers.get("authorization"), None)
    speak = gateway.settings.speak
    options = admission.resolve_options(request.query_params.multi_items(), Transport.REST, speak)
    tag = admission.owner_tag(auth.token_id) if speak.tag_token_owner else None
    if tag is not None:
        options = options.with_tag(tag)
    body = await _read_body(request, gateway.settings.connections.max_body_bytes)
    text = _read_text(request.headers.get("content-type", ""), body)
    if not text.strip():
        raise errors.Refusal(ErrorCode.EMPTY_TEXT, "Text must not be empty.")
    max_chars = gateway.settings.limits.max_speak_chars
    if len(text) > max_chars:
        raise errors.Refusal(
            ErrorCode.TEXT_TOO_LONG, f"Text has {len(text)} characters; the limit is {max_chars}."
        )
    text = limits.clean_text(text)
    gateway.limiter.charge(auth.token_id, len(text))
    return options, text, auth.token_id


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused by its declared length before reading, and as soon as it grows past the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _body_too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _body_too_large(max_bytes)
    return bytes(body)


def _body_too_large(max_bytes: int) -> errors.Refusal:
    return errors.Refusal(ErrorCode.TEXT_TOO_LONG, f"Request body is larger than {max_bytes} bytes.")


def _read_text(content_type: str, body: bytes) -> str:
    media = content_type.split(";")[0].strip().lower()
    try:
        if media == "application/json":
            data = load_json(body)
            if not isinstance(data, dict) or not isinstance(data.get("text"), str):
                raise errors.Refusal(
                    ErrorCode.BAD_REQUEST, 'Body must be a JSON object with a string "text".'
                )
            return str(data["text"])
        if media == "text/plain":
            return body.decode()
    except (ValueError, UnicodeDecodeError):
        raise errors.Refusal(ErrorCode.BAD_REQUEST, "Body is not valid JSON or UTF-8.") from None
    raise errors.Refusal(ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"Unsupported content type {media or 'none'!r}.")
