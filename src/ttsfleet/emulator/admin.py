"""Admin endpoints (`/_emulator/…`) and the projects of Deepgram's management API (`GET /v1/projects`,
`GET /v1/projects/{id}`, which Deepgram's clients read before speaking); keys are in `key_api`.

The admin endpoints are unauthenticated: the emulator is a local development and test tool that
listens on loopback by default.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ttsfleet import __version__
from ttsfleet.emulator.access import Refusal
from ttsfleet.emulator.context import EmulatorContext
from ttsfleet.emulator.faults import InvalidFault
from ttsfleet.emulator.rest import error_response
from ttsfleet.protocol import ErrorCode, read_credential


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


async def recent_requests(request: Request) -> Response:
    """The queries of the latest speak requests, oldest first: what a client or gateway forwarded."""
    return JSONResponse({"requests": list(_ctx(request).stats.recent_requests)})


async def callbacks(request: Request) -> Response:
    """Callbacks REST requests asked for; recorded, never made."""
    return JSONResponse({"callbacks": list(_ctx(request).stats.callbacks)})


async def reset(request: Request) -> Response:
    _ctx(request).reset()
    return JSONResponse({"status": "reset"})


# --- key management --------------------------------------------------------------------------------


def _authorize(request: Request, ctx: EmulatorContext) -> None:
    credential = read_credential(request.headers.get("authorization"))
    if credential is None or not ctx.keys.is_accepted(credential.secret, ctx.now()):
        raise Refusal(401, ErrorCode.INVALID_AUTH, "Invalid credentials.")


def _project(ctx: EmulatorContext) -> dict[str, Any]:
    # GetProjectV1Response (openapi.yml): the one project every accepted key belongs to.
    return {"project_id": ctx.settings.project_id, "name": "ttsfleet emulator", "mip_opt_out": False}


async def projects(request: Request) -> Response:
    ctx = _ctx(request)
    request_id = ctx.new_request_id()
    project_id = request.path_params.get("project_id")
    try:
        _authorize(request, ctx)
        if project_id is None:
            return JSONResponse({"projects": [_project(ctx)]})
        if project_id != ctx.settings.project_id:
            raise Refusal(404, ErrorCode.NOT_FOUND, f"No project {project_id!r}.")
        return JSONResponse(_project(ctx))
    except Refusal as refusal:
        return error_response(refusal, request_id)
