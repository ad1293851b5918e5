"""Admin endpoints (`/_emulator/…`); Deepgram's key-management API is in `key_api`.

The admin endpoints are unauthenticated: the emulator is a local development and test tool that
listens on loopback by default.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ttsfleet import __version__
from ttsfleet.emulator.context import EmulatorContext
from ttsfleet.emulator.faults import InvalidFault


def _ctx(request: Request) -> EmulatorContext:
    ctx: EmulatorContext = request.app.state.ctx
    return ctx


async def stats(request: Request) -> Response:
    return JSONResponse(_ctx(request).stats.to_json())


async def health(request: Request) -> Response:
    ctx = _ctx(request)
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "synthesis": ctx.renderer.backend,
            "latency": ctx.latency.describe(),
            "open_auth": ctx.keys.is_open,
        }
    )


async def faults(request: Request) -> Response:
    ctx = _ctx(request)
    if request.method == "POST":
        try:
            body: Any = await request.json()
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        specs = body.get("faults") if isinstance(body, dict) else None
        if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
            return JSONResponse({"error": 'body must be {"faults": ["spec", …]}'}, status_code=400)
        try:
            ctx.faults.replace(specs)
        except InvalidFault as error:
            return JSONResponse({"error": str(error)}, status_code=400)
    return JSONResponse({"faults": ctx.faults.specs})


async def reset(request: Request) -> Response:
    _ctx(request).reset()
    return JSONResponse({"status": "reset"})
