"""REST `POST /v1/speak`: the whole text in, streamed audio out (PROTOCOL.md, "REST"; openapi.yml).

PCM (linear16, mulaw, alaw, bare or in WAV), mp3 (the REST default), opus in ogg and flac are produced;
aac gets a 400 that says so rather than bytes that are not what was asked for. A request with a
`callback` is answered with its request id, as Deepgram does, and the callback is recorded
(`GET /_emulator/callbacks`) instead of made: the emulator never calls out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ttsfleet import wavfile
from ttsfleet.emulator.access import Refusal, admit
from ttsfleet.emulator.connection import connection_of
from ttsfleet.emulator.context import EmulatorContext
from ttsfleet.emulator.faults import ConnectionFaults
from ttsfleet.emulator.latency import split_frames
from ttsfleet.protocol import (
    CallbackMethod,
    Container,
    Encoding,
    ErrorCode,
    SpeakOptions,
    Transport,
    load_json,
)
from ttsfleet.protocol.headers import ERROR_HEADER, rest_metadata_headers


def error_response(refusal: Refusal, request_id: str) -> Response:
    """A JSON error body with `dg-error` and `dg-request-id`, as Deepgram answers."""
    return Response(
        refusal.body(request_id).to_json(),
        status_code=refusal.status,
        media_type="application/json",
        headers={ERROR_HEADER: refusal.message, "dg-request-id": request_id},
    )


async def read_text(request: Request) -> str:
    """The text of a REST request: JSON `{"text": …}` or text/plain; else a Refusal (415/400)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if content_type == "application/json":
        try:
            body = load_json(raw)
        except ValueError:
            raise Refusal(400, ErrorCode.BAD_REQUEST, "The body is not valid JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise Refusal(400, ErrorCode.BAD_REQUEST, 'The body must be a JSON object with a string "text".')
        return str(body["text"])
    if content_type == "text/plain":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal(400, ErrorCode.BAD_REQUEST, "The body is not valid UTF-8.") from None
    raise Refusal(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Send application/json or text/plain.")


async def speak_rest(request: Request) -> Response:
    ctx: EmulatorContext = request.app.state.ctx
    request_id = ctx.new_request_id()
    ctx.stats.requests_total += 1
    ctx.stats.rest_requests_total += 1
    query = request.query_params.multi_items()
    ctx.stats.request_seen("rest", query, request_id)
    try:
        admission = admit(
            ctx,
            Transport.REST,
            query,
            request.query_params.getlist("emulator_fault"),
            request.headers.get("authorization"),
            None,
        )
        options = admission.options
        if options.encoding is Encoding.AAC:
            raise Refusal(
                400,
                ErrorCode.INVALID_QUERY_PARAMETER,
                "The emulator does not produce aac: ask for mp3, opus, flac, linear16, mulaw or alaw.",
            )
        text = await read_text(request)
        if not text.strip():
            raise Refusal(400, ErrorCode.EMPTY_TEXT, "The text is empty.")
        if len(text) > ctx.settings.rest_max_chars:
            raise Refusal(
                413,
                ErrorCode.TEXT_TOO_LONG,
                f"The text is longer than {ctx.settings.rest_max_chars} characters.",
            )
    except Refusal as refusal:
        ctx.stats.refused_total[refusal.status] += 1
        return error_response(refusal, request_id)
    ctx.stats.bill(admission.credential.secret, len(text))
    if options.callback is not None:
        return _callback_accepted(ctx, options, request_id, len(text))
    body = await ctx.renderer.render_async(
        text, options.speed, options.encoding, options.sample_rate, options.model
    )
    if options.container is Container.WAV:
        body = wavfile.header(options.encoding, options.sample_rate, len(body)) + body
    headers = rest_metadata_headers(ctx.settings.rest_header_style, request_id, options.model, len(text))
    headers["dg-request-id"] = request_id  # always present, whatever the metadata spelling
    return StreamingResponse(
        _paced(request, ctx, options, admission.faults, body),
        media_type=options.audio_format.content_type,
        headers=headers,
    )


def _callback_accepted(ctx: EmulatorContext, options: SpeakOptions, request_id: str, chars: int) -> Response:
    """Deepgram answers a callback request with its id and posts the audio later; the emulator records
    where it would have posted and never calls the URL."""
    ctx.stats.callbacks.append(
        {
            "request_id": request_id,
            "url": options.callback,
            "method": (options.callback_method or CallbackMethod.POST).value,
            "model": options.model,
            "encoding": options.encoding.value,
            "characters": chars,
        }
    )
    return JSONResponse({"request_id": request_id}, headers={"dg-request-id": request_id})


class _AbortResponse(Exception):
    """Raised inside the body stream to cut the connection mid-response."""


async def _paced(
    request: Request, ctx: EmulatorContext, options: SpeakOptions, faults: ConnectionFaults, body: bytes
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    latency = ctx.latency
    sent = 0
    extra_delay_s = faults.frame_delay_ms / 1000
    for index, chunk in enumerate(
        split_frames(body, latency.frame_bytes(options.encoding, options.sample_rate))
    ):
        if faults.stall_after_bytes is not None and sent >= faults.stall_after_bytes:
            ctx.stats.faults_applied["stall"] += 1
            await asyncio.Event().wait()  # stall: the client's timeout must end this
        if (
            faults.reset is not None
            and faults.reset.after_bytes is not None
            and sent >= faults.reset.after_bytes
        ):
            handle = connection_of(request.scope)
            ctx.stats.faults_applied["reset"] += 1
            if handle is not None:
                handle.reset()
            raise _AbortResponse("reset fault")
        close = faults.close
        if close is not None and close.after_bytes is not None and sent >= close.after_bytes:
            ctx.stats.faults_applied[f"close:{close.reason}"] += 1
            raise _AbortResponse("close fault: the response is cut short")
        delay = started + latency.frame_offset_s(index, extra_delay_s) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing: the latency model, not synchronisation
        sent += len(chunk)
        ctx.stats.audio_bytes_total += len(chunk)
        yield chunk
