"""The emulator's ASGI application: routes only; behaviour lives in the modules they name."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ttsfleet.emulator import admin, key_api, rest, streaming
from ttsfleet.emulator.access import Refusal, admit
from ttsfleet.emulator.connection import connection_of
from ttsfleet.emulator.context import EmulatorContext, SpeechRenderer
from ttsfleet.emulator.settings import EmulatorSettings
from ttsfleet.protocol import Closure, ErrorCode, Transport
from ttsfleet.protocol.routes import FLUX_SPEAK_PATH, FLUX_UNSUPPORTED_MESSAGE, UNSUPPORTED_ROUTE_STATUS


async def speak_websocket(websocket: WebSocket) -> None:
    ctx: EmulatorContext = websocket.app.state.ctx
    request_id = ctx.new_request_id()
    ctx.stats.requests_total += 1
    query = websocket.query_params.multi_items()
    ctx.stats.request_seen("websocket", query, request_id)
    try:
        admission = admit(
            ctx,
            Transport.WEBSOCKET,
            query,
            websocket.query_params.getlist("emulator_fault"),
            websocket.headers.get("authorization"),
            websocket.scope.get("subprotocols"),
        )
    except Refusal as refusal:
        ctx.stats.refused_total[refusal.status] += 1
        await websocket.send_denial_response(rest.error_response(refusal, request_id))
        return
    if ctx.latency.handshake_delay_s:
        await asyncio.sleep(ctx.latency.handshake_delay_s)  # the latency model: TLS and a round trip
    subprotocol = admission.credential.subprotocol
    await websocket.accept(subprotocol=subprotocol, headers=[(b"dg-request-id", request_id.encode())])
    secret = admission.credential.secret
    ctx.stats.socket_opened(secret)
    socket = streaming.SpeakSocket(websocket, ctx, admission, request_id, connection_of(websocket.scope))
    try:
        await socket.run()
    finally:
        ending = socket.ending
        if isinstance(ending, Closure):
            ctx.stats.socket_closed(secret, int(ending.code), ending.reason.value)
        else:
            ctx.stats.socket_closed(secret, 0, ending.value if ending else "unknown")


def _flux_unsupported(ctx: EmulatorContext) -> Response:
    refusal = Refusal(UNSUPPORTED_ROUTE_STATUS, ErrorCode.NOT_FOUND, FLUX_UNSUPPORTED_MESSAGE)
    return rest.error_response(refusal, ctx.new_request_id())


async def flux_websocket(websocket: WebSocket) -> None:
    await websocket.send_denial_response(_flux_unsupported(websocket.app.state.ctx))


async def flux_rest(request: Request) -> Response:
    return _flux_unsupported(request.app.state.ctx)


def create_app(settings: EmulatorSettings, renderer: SpeechRenderer | None = None) -> Starlette:
    """Build the emulator app; `renderer` defaults to eSpeak NG."""
    if renderer is None:
        from ttsfleet.emulator import rendering

        renderer = rendering.Renderer(cache_entries=settings.synthesis_cache_entries)
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/speak", speak_websocket),
            Route("/v1/speak", rest.speak_rest, methods=["POST"]),
            WebSocketRoute(FLUX_SPEAK_PATH, flux_websocket),
            Route(FLUX_SPEAK_PATH, flux_rest, methods=["POST"]),
            Route("/v1/projects", admin.projects, methods=["GET"]),
            Route("/v1/projects/{project_id}", admin.projects, methods=["GET"]),
            Route("/v1/projects/{project_id}/keys", key_api.keys, methods=["GET", "POST"]),
            Route("/v1/projects/{project_id}/keys/{key_id}", key_api.key, methods=["GET", "DELETE"]),
            Route("/_emulator/stats", admin.stats, methods=["GET"]),
            Route("/_emulator/requests", admin.recent_requests, methods=["GET"]),
            Route("/_emulator/callbacks", admin.callbacks, methods=["GET"]),
            Route("/_emulator/healthz", admin.health, methods=["GET"]),
            Route("/_emulator/faults", admin.faults, methods=["GET", "POST"]),
            Route("/_emulator/reset", admin.reset, methods=["POST"]),
        ]
    )
    app.state.ctx = EmulatorContext(settings=settings, renderer=renderer)
    return app
