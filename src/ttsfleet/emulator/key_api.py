"""Deepgram's key-management API (`/v1/projects/{project_id}/keys`), shaped as openapi.yml says.

Create answers CreateKeyV1Response (the secret, once); list answers `{api_keys: [{member, api_key}]}`
with an optional `status=active|expired` filter; get answers `{item: {member: {…, api_key}}}`; delete
answers `{message}`. Listing and showing need `keys:read`, creating and deleting `keys:write` (or a
role scope, see `keys.Need`); an unknown key gets 401, a key without the scope 403.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ttsfleet.emulator.access import Refusal
from ttsfleet.emulator.context import EmulatorContext
from ttsfleet.emulator.keys import Access, KeyStatus, Need, member, parse_expiration
from ttsfleet.emulator.rest import error_response
from ttsfleet.protocol import ErrorCode, read_credential


def _authorize(request: Request, ctx: EmulatorContext, need: Need) -> None:
    credential = read_credential(request.headers.get("authorization"))
    access = Access.UNKNOWN if credential is None else ctx.keys.check(credential.secret, ctx.now(), need)
    if access is Access.UNKNOWN:
        raise Refusal(401, ErrorCode.INVALID_AUTH, "Invalid credentials.")
    if access is Access.FORBIDDEN:
        scope = "keys:write" if need is Need.WRITE_KEYS else "keys:read"
        raise Refusal(403, ErrorCode.INSUFFICIENT_PERMISSIONS, f"The API key lacks the {scope} scope.")


async def keys(request: Request) -> Response:
    """`GET`/`POST …/keys`."""
    ctx: EmulatorContext = request.app.state.ctx
    request_id = ctx.new_request_id()
    project_id = request.path_params["project_id"]
    try:
        if request.method == "POST":
            _authorize(request, ctx, Need.WRITE_KEYS)
            return await _create_key(request, ctx, project_id)
        _authorize(request, ctx, Need.READ_KEYS)
        raw_status = request.query_params.get("status")
        try:
            status = KeyStatus(raw_status) if raw_status is not None else None
        except ValueError:
            raise Refusal(400, ErrorCode.BAD_REQUEST, "status must be active or expired.") from None
        listed = [
            {"member": member(), "api_key": key.describe()}
            for key in ctx.keys.list(project_id, ctx.now(), status)
        ]
        return JSONResponse({"api_keys": listed})
    except Refusal as refusal:
        return error_response(refusal, request_id)


async def key(request: Request) -> Response:
    """`GET`/`DELETE …/keys/{key_id}`."""
    ctx: EmulatorContext = request.app.state.ctx
    request_id = ctx.new_request_id()
    project_id, key_id = request.path_params["project_id"], request.path_params["key_id"]
    try:
        _authorize(request, ctx, Need.WRITE_KEYS if request.method == "DELETE" else Need.READ_KEYS)
        found = ctx.keys.get(project_id, key_id)
        if found is None:
            raise Refusal(404, ErrorCode.NOT_FOUND, f"No key {key_id!r} in project {project_id!r}.")
        if request.method == "DELETE":
            ctx.keys.delete(project_id, key_id)
            return JSONResponse({"message": "Successfully deleted the API key!"})
        return JSONResponse({"item": {"member": {**member(), "api_key": found.describe()}}})
    except Refusal as refusal:
        return error_response(refusal, request_id)


async def _create_key(request: Request, ctx: EmulatorContext, project_id: str) -> Response:
    try:
        body: Any = await request.json()
    except ValueError:
        raise Refusal(400, ErrorCode.BAD_REQUEST, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refusal(400, ErrorCode.BAD_REQUEST, "The body must be a JSON object.")
    comment, scopes, tags = body.get("comment"), body.get("scopes"), body.get("tags", [])
    ttl = body.get("time_to_live_in_seconds")
    if not isinstance(comment, str) or not comment:
        raise Refusal(400, ErrorCode.BAD_REQUEST, "comment is required.")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
        raise Refusal(400, ErrorCode.BAD_REQUEST, "scopes must be a non-empty list of strings.")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise Refusal(400, ErrorCode.BAD_REQUEST, "tags must be a list of strings.")
    if ttl is not None and "expiration_date" in body:
        raise Refusal(
            400, ErrorCode.BAD_REQUEST, "Give time_to_live_in_seconds or expiration_date, not both."
        )
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise Refusal(400, ErrorCode.BAD_REQUEST, "time_to_live_in_seconds must be a positive number.")
    try:
        expiration = parse_expiration(body.get("expiration_date"))
    except ValueError as error:
        raise Refusal(400, ErrorCode.BAD_REQUEST, str(error)) from None
    created = ctx.keys.create(
        project_id, comment, scopes, tags, ctx.now(), ttl_s=ttl, expiration_date=expiration
    )
    return JSONResponse(created.created_body())
