"""The gateway's HTTP face: `/v1/speak` (WebSocket and REST), probes, `/statusz`, `/metrics`, `/drain`.

Routes only admit requests and hand them to the gateway's parts; refused upgrades use the ASGI
WebSocket denial-response extension, so clients see an HTTP status, `dg-error` and a JSON body.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST

from ttsfleet.dataplane import admission, rest, status, tracing
from ttsfleet.dataplane.gateway import Gateway
from ttsfleet.dataplane.sessions import Session
from ttsfleet.dataplane.tokens import AuthOutcome
from ttsfleet.protocol import CloseReason, Closure, Metadata, SpeakOptions, Transport

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


def create_app(gateway: Gateway) -> FastAPI:
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

    @app.websocket("/v1/speak")
    async def speak_socket(websocket: WebSocket) -> None:
        await _serve_socket(gateway, websocket)

    @app.post("/v1/speak")
    async def speak_rest(request: Request) -> Response:
        return await rest.serve(gateway, request)

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

    @app.post("/drain")
    async def start_drain() -> JSONResponse:
        gateway.tasks.spawn("drain", gateway.drain())
        return JSONResponse({"draining": True, "sessions": gateway.lifecycle.sessions}, status_code=202)

    @app.get("/drain")
    async def drain_and_wait() -> PlainTextResponse:
        # preStop: the kubelet sends SIGTERM only after this returns, so it returns once drained.
        clean = await gateway.drain()
        return PlainTextResponse("drained\n" if clean else "drained at the deadline\n")

    return app


async def _serve_socket(gateway: Gateway, websocket: WebSocket) -> None:
    request_id = admission.new_request_id()
    client_id = admission.client_request_id(websocket.headers.get("x-request-id"))
    headers = {"dg-request-id": request_id, "x-ttsfleet-pod": gateway.pod}
    with structlog.contextvars.bound_contextvars(session_id=request_id, client_request_id=client_id):
        try:
            options, auth = _admit(gateway, websocket)
        except admission.Refusal as refusal:
            await websocket.send_denial_response(rest.refused(gateway, refusal, request_id, headers))
            return
        try:
            await websocket.accept(
                subprotocol=auth.subprotocol,
                headers=[(k.encode(), v.encode()) for k, v in headers.items()],
            )
            await _run_session(gateway, websocket, options, auth, request_id, client_id)
        finally:
            gateway.sessions.close()


async def _run_session(
    gateway: Gateway,
    websocket: WebSocket,
    options: SpeakOptions,
    auth: AuthOutcome,
    request_id: str,
    client_id: str | None,
) -> None:
    metadata = _metadata(gateway, options, request_id)
    session = Session(websocket, options, auth.token_id, gateway.session_context)
    gateway.metrics.sessions.inc()
    gateway.metrics.sessions_active.inc()
    gateway.lifecycle.add(session)
    unwatch = gateway.revocations.watch(auth.token_id, session.revoke) if auth.token_id else None
    log.info("session opened", model=options.model, encoding=options.encoding.value, token=auth.token_id)
    try:
        traced = {"session_id": request_id, "client_request_id": client_id or "", "model": options.model}
        with tracing.span("session", traced):
            closure = await session.run(metadata)
    except Exception:
        log.exception("session crashed")
        closure = Closure.for_reason(CloseReason.INTERNAL)
        with contextlib.suppress(Exception):  # the socket may already be gone
            await websocket.close(int(closure.code), closure.reason.value)
    finally:
        if unwatch is not None:
            unwatch()
        gateway.lifecycle.remove(session)
        gateway.metrics.sessions_active.dec()
    log.info(
        "session closed",
        utterances=session.utterances,
        close_code=int(closure.code) if closure else None,
        close_reason=closure.reason.value if closure else None,
    )


def _admit(gateway: Gateway, websocket: WebSocket) -> tuple[SpeakOptions, AuthOutcome]:
    facts = gateway.facts()
    admission.check_serving(facts.draining, facts.fingerprint is not None, facts.credential_valid is False)
    subprotocols = websocket.scope.get("subprotocols") or []
    auth = admission.check_auth(gateway.tokens, websocket.headers.get("authorization"), list(subprotocols))
    options = admission.resolve_options(
        dict(websocket.query_params), Transport.WEBSOCKET, gateway.settings.speak
    )
    admission.check_capacity(gateway.sessions.try_open())
    return options, auth


def _metadata(gateway: Gateway, options: SpeakOptions, request_id: str) -> str:
    """Our Metadata, at once: the gateway's request id and the model; version and uuid as the pool knows them.

    Never waits for upstream (a cold key would add a handshake to the session's first byte): before any
    socket of the model opened, version and uuid are empty. A connect warms nothing: the session's key
    is warmed at its first Speak, so idle sessions cannot fill the upstream pool.
    """
    known = gateway.pool.known_model(options.model)
    if known is None:
        return Metadata(request_id, options.model, "", "").to_json()
    return Metadata(request_id, options.model, known.model_version, known.model_uuid).to_json()
