"""The gateway's HTTP face: `/v1/speak` (WebSocket and REST), probes, `/statusz`, `/metrics`.

Routes only admit requests and hand them to the gateway's parts; refused upgrades use the ASGI
WebSocket denial-response extension, so clients see an HTTP status, `dg-error` and a JSON body.
There is no drain route: only the kubelet's SIGTERM drains a pod (`serving.py`), so nobody on the
network can take a backend down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Receive, Scope, Send

from ttsfleet import logs
from ttsfleet.dataplane import admission, answers, errors, rest, status, tracing
from ttsfleet.dataplane.connections import WRITE_NOW_EXTENSION
from ttsfleet.dataplane.gateway import Gateway
from ttsfleet.dataplane.sessions import Session
from ttsfleet.dataplane.sockets import PoolKey, ReleaseOutcome
from ttsfleet.dataplane.tokens import AuthOutcome
from ttsfleet.protocol import ErrorCode, Metadata, SpeakOptions, Transport
from ttsfleet.protocol.routes import FLUX_SPEAK_PATH, FLUX_UNSUPPORTED_MESSAGE, SPEAK_PATH

log = structlog.get_logger(__name__)

# FastAPI's native OpenTelemetry asks for the global providers on every connection (`NativeTelemetry.enabled`
# from `FastAPI.__call__`, ~0.3 ms per upgrade in the profile) and would add its spans beside ours
# (`tracing.py`): all off, so that check stops at the first flag.
NO_FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


class SpeakSocketFirst:
    """`/v1/speak` WebSocket upgrades go straight to the session handler; everything else (REST, probes,
    lifespan) to the FastAPI app.

    A session needs none of FastAPI's per-connection work (its middleware stack, exception wrappers,
    route matching and dependency scope): the handler refuses, accepts and closes by itself and catches
    what a session raises. Skipping it is the largest per-connection saving the profile showed.
    """

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self._app = app
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == SPEAK_PATH:
            await _serve_socket(self._gateway, WebSocket(scope, receive, send))
        else:
            await self._app(scope, receive, send)


def create_app(gateway: Gateway) -> ASGIApp:
    """The ASGI app; its lifespan starts and stops the gateway."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None, telemetry=NO_FASTAPI_TELEMETRY
    )

    @app.post(SPEAK_PATH)
    async def speak_rest(request: Request) -> Response:
        return await rest.serve(gateway, request)

    @app.websocket(FLUX_SPEAK_PATH)
    async def flux_socket(websocket: WebSocket) -> None:
        await websocket.send_denial_response(_flux_unsupported(gateway))

    @app.post(FLUX_SPEAK_PATH)
    async def flux_rest() -> Response:
        return _flux_unsupported(gateway)

    @app.get("/livez")
    async def livez() -> JSONResponse:
        return JSONResponse({"live": True})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        facts = gateway.facts()
        reason = status.not_ready_reason(facts)
        return JSONResponse(
            {"ready": reason is None, "reason": reason}, status_code=200 if reason is None else 503
        )

    @app.get("/statusz")
    async def statusz() -> JSONResponse:
        return JSONResponse(status.render_status(gateway.facts()))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return SpeakSocketFirst(app, gateway)


def _flux_unsupported(gateway: Gateway) -> Response:
    """Flux TTS is not served yet: 404 as for an unsupported route, saying so."""
    request_id = admission.new_request_id()
    headers = {"dg-request-id": request_id, "x-ttsfleet-pod": gateway.pod}
    refusal = errors.Refusal(ErrorCode.NOT_FOUND, FLUX_UNSUPPORTED_MESSAGE)
    return rest.refused(gateway, refusal, request_id, headers)


async def _serve_socket(gateway: Gateway, websocket: WebSocket) -> None:
    request_id = admission.new_request_id()
    client_id = admission.client_request_id(websocket.headers.get("x-request-id"))
    headers = {"dg-request-id": request_id, "x-ttsfleet-pod": gateway.pod}
    with logs.bound(session_id=request_id, client_request_id=client_id):
        try:
            options, auth = _admit(gateway, websocket)
        except errors.Refusal as refusal:
            await websocket.send_denial_response(rest.refused(gateway, refusal, request_id, headers))
            return
        try:
            details = await _model_details(gateway, options, _extension(websocket, "settle"))
            if isinstance(details, errors.UpstreamAnswer):  # Deepgram refused this voice or format
                await websocket.send_denial_response(rest.relayed(gateway, details, headers))
                return
            await websocket.accept(
                subprotocol=auth.subprotocol,
                headers=[(k.encode(), v.encode()) for k, v in headers.items()],
            )
            metadata = _metadata(options, request_id, details)
            await _run_session(gateway, websocket, options, auth, request_id, client_id, metadata)
        finally:
            gateway.sessions.close()


async def _run_session(
    gateway: Gateway,
    websocket: WebSocket,
    options: SpeakOptions,
    auth: AuthOutcome,
    request_id: str,
    client_id: str | None,
    metadata: str,
) -> None:
    write_now = _extension(websocket, "write")
    session = Session(websocket, options, auth.token_id, gateway.session_context, write_now)
    key = PoolKey.of(options)
    gateway.metrics.sessions.inc()
    gateway.metrics.sessions_active.inc()
    gateway.lifecycle.add(session)
    gateway.pool.session_opened(key)
    unwatch = gateway.revocations.watch(auth.token_id, session.revoke) if auth.token_id else None
    log.info("session opened", model=options.model, encoding=options.encoding.value, token=auth.token_id)
    try:
        traced = {"session_id": request_id, "client_request_id": client_id or "", "model": options.model}
        with tracing.span("session", traced):
            closure = await session.run(metadata)
    except Exception as crash:
        log.exception("session crashed")
        closure = answers.closure_for(crash)
        with contextlib.suppress(Exception):  # the socket may already be gone
            await websocket.close(int(closure.code), closure.reason.value)
    finally:
        if unwatch is not None:
            unwatch()
        gateway.lifecycle.remove(session)
        gateway.pool.session_closed(key)
        gateway.metrics.sessions_active.dec()
    log.info(
        "session closed",
        utterances=session.utterances,
        close_code=int(closure.code) if closure else None,
        close_reason=closure.reason.value if closure else None,
    )


def _admit(gateway: Gateway, websocket: WebSocket) -> tuple[SpeakOptions, AuthOutcome]:
    gateway.check_serving()
    subprotocols = websocket.scope.get("subprotocols") or []
    auth = admission.check_auth(gateway.tokens, websocket.headers.get("authorization"), list(subprotocols))
    options = admission.resolve_options(
        websocket.query_params.multi_items(), Transport.WEBSOCKET, gateway.settings.speak
    )
    admission.check_capacity(gateway.sessions.try_open())
    return options, auth


def _extension(websocket: WebSocket, name: str) -> Any:
    """One of the gateway's own connection hooks (`connections.WRITE_NOW_EXTENSION`); None without it."""
    return (websocket.scope.get("extensions") or {}).get(WRITE_NOW_EXTENSION, {}).get(name)


async def _model_details(
    gateway: Gateway, options: SpeakOptions, settle: Callable[[], None] | None
) -> Metadata | errors.UpstreamAnswer | None:
    """What upstream said about the session's model, for its Metadata; or upstream's refusal of it.

    The pool remembers what upstream's sockets said about each model. On a model's first session on
    this pod nothing is known yet, so that one session waits for an upstream socket of its key (which
    then serves its first utterance warm): Metadata is never sent with empty fields while upstream
    answers, and a voice Deepgram does not know is refused at the upgrade, with Deepgram's own answer,
    as Deepgram would. Later sessions never wait; the key is warmed behind the client's first Speak.
    If upstream cannot be reached, the fields stay empty and the first utterance reports the failure.
    While it waits, the upgrade gives up its turn (`settle`): other upgrades need not wait for upstream.
    """
    key = PoolKey.of(options)
    known = gateway.pool.known_model(options.model)
    if known is not None:
        return known
    if settle is not None:
        settle()
    try:
        pooled = await gateway.pool.lease(key, 0)
    except errors.UpstreamRejected as refused:
        return refused.answer
    except errors.UpstreamError as error:
        log.info("model details unavailable", model=key.model, error_class=error.error_class.value)
        return None
    gateway.pool.release(pooled, ReleaseOutcome.CLEAN)
    return gateway.pool.known_model(key.model)


def _metadata(options: SpeakOptions, request_id: str, details: Metadata | None) -> str:
    """Our Metadata: the gateway's request id, the model, and upstream's version and uuid of the model."""
    if details is None:
        return Metadata(request_id, options.model, "", "").to_json()
    return Metadata(request_id, options.model, details.model_version, details.model_uuid).to_json()
